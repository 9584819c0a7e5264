"""Models: registry, the composed SegmentationModel, backbones, heads and the zoo of builders."""

from semseg.models.registry import create_model, legacy_options, list_models, register_model
from semseg.models.segmentor import SegmentationModel, SegmentationOutput

__all__ = ["SegmentationModel", "SegmentationOutput", "create_model", "legacy_options", "list_models", "register_model"]

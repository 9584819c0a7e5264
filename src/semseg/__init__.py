"""semseg: semantic segmentation in PyTorch, the classic networks faithful to their papers."""

from semseg.models import SegmentationModel, SegmentationOutput, create_model, list_models

__version__ = "0.1.0"

__all__ = ["SegmentationModel", "SegmentationOutput", "__version__", "create_model", "list_models"]

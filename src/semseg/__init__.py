"""semseg: semantic segmentation in PyTorch, the classic networks faithful to their papers.

Quick tour::

    import semseg
    semseg.list_models("deeplab*")
    model = semseg.create_model("deeplabv3plus_mobilenetv2", num_classes=11)
    model = semseg.load_model("runs/my_run")          # a trained checkpoint, eval mode
    labels = semseg.predict(model, image_uint8_hwc)   # int64 (H, W)

The names below are imported on first use, so ``import semseg.data`` (or ``semseg.metrics``)
loads that layer alone, not the models and the training engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "SegmentationModel": "semseg.models",
    "SegmentationOutput": "semseg.models",
    "create_model": "semseg.models",
    "list_models": "semseg.models",
    "load_model": "semseg.api",
    "convert_checkpoint": "semseg.api",
    "predict": "semseg.api",
}

__all__ = [
    "SegmentationModel",
    "SegmentationOutput",
    "__version__",
    "convert_checkpoint",
    "create_model",
    "list_models",
    "load_model",
    "predict",
]

if TYPE_CHECKING:
    from semseg.api import convert_checkpoint, load_model, predict
    from semseg.models import SegmentationModel, SegmentationOutput, create_model, list_models


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'semseg' has no attribute {name!r}")

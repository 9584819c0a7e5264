"""semseg: semantic segmentation in PyTorch, the classic networks faithful to their papers.

Quick tour::

    import semseg
    semseg.list_models("deeplab*")
    model = semseg.create_model("deeplabv3plus_mobilenetv2", num_classes=11)
    model = semseg.load_model("runs/my_run")          # a trained checkpoint, eval mode
    labels = semseg.predict(model, image_uint8_hwc)   # int64 (H, W)
"""

from semseg.api import load_model, predict
from semseg.models import SegmentationModel, SegmentationOutput, create_model, list_models

__version__ = "0.1.0"

__all__ = [
    "SegmentationModel",
    "SegmentationOutput",
    "__version__",
    "create_model",
    "list_models",
    "load_model",
    "predict",
]

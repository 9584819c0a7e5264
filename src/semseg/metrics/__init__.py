"""Segmentation metrics from an accumulated confusion matrix (see ``confusion.py``)."""

from semseg.metrics.confusion import ConfusionMatrix, scores_from_confusion
from semseg.metrics.iiou import (
    CITYSCAPES_AVERAGE_INSTANCE_SIZE,
    CITYSCAPES_INSTANCE_TRAIN_IDS,
    CITYSCAPES_NUM_CLASSES,
    InstanceIoU,
)
from semseg.metrics.table import format_table

__all__ = [
    "CITYSCAPES_AVERAGE_INSTANCE_SIZE",
    "CITYSCAPES_INSTANCE_TRAIN_IDS",
    "CITYSCAPES_NUM_CLASSES",
    "ConfusionMatrix",
    "InstanceIoU",
    "format_table",
    "scores_from_confusion",
]

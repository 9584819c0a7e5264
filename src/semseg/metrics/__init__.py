"""Segmentation metrics from an accumulated confusion matrix (see ``confusion.py``)."""

from semseg.metrics.confusion import ConfusionMatrix, scores_from_confusion
from semseg.metrics.table import format_table

__all__ = ["ConfusionMatrix", "format_table", "scores_from_confusion"]

"""Segmentation datasets: the official benchmark layouts, plain folders, and the registry that
builds any of them by name.

Every dataset yields ``(image uint8 (3, H, W), mask int64 (H, W))`` with train ids
``0 .. num_classes - 1`` and ``ignore_index`` (255), and carries ``classes`` and ``palette``::

    from semseg.data import Cityscapes, build_dataset
    val = Cityscapes("/data/cityscapes", "val")
    train = build_dataset("voc", "/data/VOCdevkit", "train_aug")

Paired transforms are in :mod:`semseg.data.transforms`, class statistics in
:mod:`semseg.data.statistics`, tree checks in :mod:`semseg.data.check` and archive downloads in
:mod:`semseg.data.download`.
"""

from semseg.data.ade20k import ADE20K
from semseg.data.base import PairTransform, SegmentationDataset
from semseg.data.cache import CachedDataset, collate_pairs
from semseg.data.camvid import CamVid
from semseg.data.cityscapes import Cityscapes
from semseg.data.folder import FolderDataset
from semseg.data.registry import DATASETS, SAMPLE_ROOT, DatasetSpec, build_dataset, get_spec
from semseg.data.voc import VOCSegmentation

__all__ = [
    "ADE20K",
    "DATASETS",
    "SAMPLE_ROOT",
    "CachedDataset",
    "CamVid",
    "Cityscapes",
    "DatasetSpec",
    "FolderDataset",
    "PairTransform",
    "SegmentationDataset",
    "VOCSegmentation",
    "build_dataset",
    "collate_pairs",
    "get_spec",
]

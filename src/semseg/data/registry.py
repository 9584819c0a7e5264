"""Datasets by name: ``voc``, ``ade20k``, ``cityscapes``, ``camvid`` and ``folder``.

Modules are imported on first use, so naming one dataset does not import the others.

Example::

    from semseg.data.registry import build_dataset
    val = build_dataset("cityscapes", "/data/cityscapes", "val")
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from semseg.data.base import PairTransform, SegmentationDataset
from semseg.errors import ConfigError, DataError

PairFinder = Callable[[str | Path, str], tuple[list[tuple[Path, Path]], list[str]]]


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives: its module and class and, for ``semseg data check``, the
    ``(root, split) -> (pairs, problems)`` function that lists every missing file, the raw-id ->
    train-id table function and whether masks must be plain ids (not palette PNGs). Datasets
    without a pair finder are checked through their constructor, which stops at the first error."""

    module: str
    cls: str
    pair_finder: str | None = None
    label_map: str | None = None
    id_masks: bool = False

    def import_module(self) -> ModuleType:
        return importlib.import_module(self.module)

    def dataset_class(self) -> type[SegmentationDataset]:
        return getattr(self.import_module(), self.cls)

    def splits(self) -> tuple[str, ...]:
        return tuple(getattr(self.import_module(), "SPLITS", ("train", "val")))

    def finder(self) -> PairFinder | None:
        return getattr(self.import_module(), self.pair_finder) if self.pair_finder else None

    def classes(self) -> tuple[str, ...]:
        return tuple(self.import_module().CLASSES)

    def build_label_map(self) -> np.ndarray | None:
        return getattr(self.import_module(), self.label_map)() if self.label_map else None


DATASETS: dict[str, DatasetSpec] = {
    "voc": DatasetSpec("semseg.data.voc", "VOCSegmentation", "voc_pairs"),
    "ade20k": DatasetSpec("semseg.data.ade20k", "ADE20K", "ade20k_pairs", "ade20k_label_map", id_masks=True),
    "cityscapes": DatasetSpec(
        "semseg.data.cityscapes", "Cityscapes", "cityscapes_pairs", "cityscapes_label_map", id_masks=True
    ),
    "camvid": DatasetSpec("semseg.data.camvid", "CamVid"),
    "folder": DatasetSpec("semseg.data.folder", "FolderDataset"),
}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    return DATASETS[name]


def build_dataset(
    name: str,
    root: str | Path,
    split: str,
    transform: PairTransform | None = None,
    classes: Sequence[str] | None = None,
) -> SegmentationDataset:
    """The dataset ``name`` at ``root`` for ``split``.

    Args:
        name: one of :data:`DATASETS`.
        root: the dataset folder (each class's docstring shows the tree it expects).
        split: e.g. ``train`` or ``val``; allowed values depend on the dataset.
        transform: paired transform applied to every item.
        classes: class names, needed only by ``folder`` (whose masks carry no names).
    """
    spec = get_spec(name)
    if name == "folder":
        # The folder layout (split subfolders or list files) is decided in one place, data.build.
        from semseg.data.build import build_dataset as build_folder

        return build_folder("folder", root, split, transform, list(classes) if classes else None)
    splits = spec.splits()
    if split not in splits:
        raise DataError(f"unknown {name} split {split!r}; allowed: {', '.join(splits)}")
    return spec.dataset_class()(root, split, transform)

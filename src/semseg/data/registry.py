"""Datasets by name: the one table behind the config's ``data.dataset``, :func:`build_dataset` and
``semseg data check``.

======================  ==============================================================
``sample``              the CamVid frames embedded in the package (used when root is None)
``camvid``              :class:`~semseg.data.camvid.CamVid`
``folder``              :class:`~semseg.data.folder.FolderDataset` (needs ``classes``)
``voc``                 :class:`~semseg.data.voc.VOCSegmentation`
``ade20k``              :class:`~semseg.data.ade20k.ADE20K`
``cityscapes``          :class:`~semseg.data.cityscapes.Cityscapes`
======================  ==============================================================

Example::

    from semseg.data import build_dataset
    val = build_dataset("cityscapes", "/data/cityscapes", "val")
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import semseg.data.ade20k as ade20k
import semseg.data.camvid as camvid
import semseg.data.cityscapes as cityscapes
import semseg.data.voc as voc
from semseg.data.base import PairTransform, SegmentationDataset
from semseg.data.folder import FolderDataset, folder_pairs
from semseg.data.layout import Pairs
from semseg.errors import ConfigError, DataError

BINARY_CLASSES = ("background", "foreground")
"""The class names of a binary dataset when ``data.classes`` is not given."""

DOWNLOADABLE = ("camvid",)
"""The datasets ``semseg data download`` fetches (see :mod:`semseg.data.download`)."""

PairFinder = Callable[[str | Path, str], tuple[Pairs, list[str]]]

SAMPLE_ROOT = Path(__file__).resolve().parents[1] / "sample" / "camvid_mini"
"""The embedded CamVid frames (32 train, 8 val, 240x180), the root of ``sample`` by default."""


@dataclass(frozen=True)
class DatasetSpec:
    """How to build one dataset by name, and what ``semseg data check`` needs to walk its tree.

    Attributes:
        factory: ``(root, split, transform=..., classes=...) -> dataset``; ``classes`` is passed
            only where :attr:`classes` is ``None``.
        classes: the class names; ``None`` where the user gives them (``folder``: masks carry no names).
        splits: the allowed splits; ``None`` where the tree decides (``folder``: its list files and
            split subfolders, or any name for a root without either).
        default_root: the root when none is given; ``None`` means a root is required.
        pair_finder: ``(root, split) -> (pairs, problems)`` listing every missing file, so
            ``semseg data check`` reports them all (every dataset here has one). A dataset
            without one is checked through its constructor, which stops at the first error.
        label_map: builds the raw-id -> train-id table; ``None`` where raw ids are train ids or
            the dataset's own constructor sets the table.
        id_masks: masks must be plain ids (not palette PNGs).
    """

    factory: Callable[..., SegmentationDataset]
    classes: tuple[str, ...] | None
    splits: tuple[str, ...] | None
    default_root: Path | None = None
    pair_finder: PairFinder | None = None
    label_map: Callable[[], np.ndarray] | None = None
    id_masks: bool = False


# The order is the one error messages list the names in.
DATASETS: dict[str, DatasetSpec] = {
    "sample": DatasetSpec(
        camvid.CamVid,
        camvid.CLASSES,
        camvid.SPLITS,
        default_root=SAMPLE_ROOT,
        pair_finder=camvid.camvid_pairs,
        label_map=camvid.camvid_label_map,
    ),
    "camvid": DatasetSpec(
        camvid.CamVid, camvid.CLASSES, camvid.SPLITS, pair_finder=camvid.camvid_pairs, label_map=camvid.camvid_label_map
    ),
    "folder": DatasetSpec(FolderDataset.from_split, None, None, pair_finder=folder_pairs),
    "voc": DatasetSpec(voc.VOCSegmentation, voc.CLASSES, voc.SPLITS, pair_finder=voc.voc_pairs),
    "ade20k": DatasetSpec(
        ade20k.ADE20K,
        ade20k.CLASSES,
        ade20k.SPLITS,
        pair_finder=ade20k.ade20k_pairs,
        label_map=ade20k.ade20k_label_map,
        id_masks=True,
    ),
    "cityscapes": DatasetSpec(
        cityscapes.Cityscapes,
        cityscapes.CLASSES,
        cityscapes.SPLITS,
        pair_finder=cityscapes.cityscapes_pairs,
        label_map=cityscapes.cityscapes_label_map,
        id_masks=True,
    ),
}


DATA_ENV = "SEMSEG_DATA"
"""The environment variable naming the folder that holds the datasets (``$SEMSEG_DATA/camvid``)."""


def default_data_root(name: str) -> Path:
    """Where ``name`` is looked for when ``data.root`` is not given: ``$SEMSEG_DATA/<name>``, else
    ``./data/<name>`` under the working directory (where ``semseg data download`` puts it).

    Raises:
        ConfigError: that folder does not exist; the message says how to get the data.
    """
    base = os.environ.get(DATA_ENV)
    root = Path(base or "data") / name
    if root.is_dir():
        return root
    fetch = f"get it with `semseg data download {name} {root.parent}`, or " if name in DOWNLOADABLE else ""
    raise ConfigError(
        f"no data.root given for dataset {name!r} and {root} does not exist; "
        f"{fetch}point to your copy with --set data.root=PATH or {DATA_ENV}=DIR (its parent)"
    )


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name``; a :class:`ConfigError` listing the names otherwise."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    return DATASETS[name]


def build_dataset(
    name: str,
    root: str | Path | None,
    split: str,
    transform: PairTransform | None = None,
    classes: Sequence[str] | None = None,
    binary: bool = False,
) -> SegmentationDataset:
    """The dataset ``name`` at ``root`` for ``split``.

    Items are ``(image uint8 (3, H, W), mask int64 (H, W))``, after ``transform`` if given.

    Args:
        name: one of :data:`DATASETS`.
        root: the dataset folder (each class's docstring shows the tree it expects); ``None``:
            the embedded frames for ``sample``, :func:`default_data_root` for the others.
        split: e.g. ``train`` or ``val``; allowed values depend on the dataset.
        transform: paired transform applied to every item.
        classes: class names, needed only by ``folder`` (whose masks carry no names); with
            ``binary``, two names (default ``background, foreground``).
        binary: binary masks (``data.binary``; ``folder`` only): 0 is background, 1 or 255
            foreground, :data:`~semseg.data.io.BINARY_IGNORE_VALUE` (128) ignored.

    Raises:
        ConfigError: unknown ``name``, no ``root`` and no default folder, ``folder`` without
            ``classes``.
        DataError: unknown ``split``, or a problem in the tree.
    """
    spec = get_spec(name)
    if binary:
        if name != "folder":
            raise ConfigError(f"data.binary needs the folder dataset (masks of 0/1 or 0/255), not {name!r}")
        classes = list(classes) if classes else list(BINARY_CLASSES)
        if len(classes) != 2:
            raise ConfigError(f"data.binary: data.classes names the 2 classes (background, foreground), got {classes}")
    if root is None:
        root = spec.default_root or default_data_root(name)
    options: dict[str, list[str]] = {}
    if spec.classes is None:
        if not classes:
            raise ConfigError(f"dataset {name!r} needs data.classes (a list of class names)")
        options["classes"] = list(classes)
    if spec.splits is not None and split not in spec.splits:
        raise DataError(f"unknown {name} split {split!r}; allowed: {', '.join(spec.splits)}")
    dataset = spec.factory(root, split, transform=transform, **options)
    dataset.binary = binary
    return dataset

"""CamVid, 11-class version (Brostow et al. 2008; split and classes as SegNet,
https://arxiv.org/abs/1511.00561).

Expected tree (``root`` is this folder)::

    camvid/
      train/  val/  test/            RGB PNG, 480x360
      trainannot/ valannot/ testannot/   mode-L PNG label ids 0..11 (11 = void)
      train.txt val.txt [test.txt]   "train/x.png trainannot/x.png" per line (optional)

Void (11) is mapped to ``ignore_index`` 255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semseg.constants import IGNORE_INDEX
from semseg.data.base import PairTransform, SegmentationDataset
from semseg.data.folder import pairs_from_folders, pairs_from_list
from semseg.data.layout import label_table
from semseg.errors import DataError

CLASSES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)  # fmt: skip
PALETTE = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)  # fmt: skip
SPLITS = ("train", "val", "test", "trainval")


def camvid_label_map(ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Raw ids 0..10 stay, 11 (void) and anything above becomes ``ignore_index``; an ``int64 (256,)``
    lookup table."""
    return label_table({i: i for i in range(len(CLASSES))}, size=256, ignore_index=ignore_index, fill=ignore_index)


class CamVid(SegmentationDataset):
    """CamVid 11 classes; void is ``ignore_index`` 255.

    Items are ``(image uint8 (3, H, W), mask int64 (H, W))``, after ``transform`` if given.

    Args:
        root: the folder above (its ``{split}.txt`` list files are used where present, else the
            ``{split}/`` and ``{split}annot/`` folders).
        split: ``train``, ``val``, ``test`` or ``trainval``.
        transform: paired transform applied to every ``(image, mask)``.
    """

    classes = CLASSES

    def __init__(self, root: str | Path, split: str = "train", transform: PairTransform | None = None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"CamVid root not found: {root}")
        if split not in SPLITS:
            raise DataError(f"unknown CamVid split {split!r}; allowed: {', '.join(SPLITS)}")
        parts = ("train", "val") if split == "trainval" else (split,)
        pairs = []
        for part in parts:
            list_file = root / f"{part}.txt"
            if list_file.is_file():
                pairs += pairs_from_list(list_file, root)
            else:
                pairs += pairs_from_folders(root / part, root / f"{part}annot")
        self.root = root
        self.split = split
        super().__init__(pairs, CLASSES, PALETTE, camvid_label_map(), transform)

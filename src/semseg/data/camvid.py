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
from semseg.data.folder import find_folder_pairs, find_list_pairs
from semseg.data.layout import Pairs, check_split, label_table, raise_first
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


def camvid_pairs(root: str | Path, split: str) -> tuple[Pairs, list[str]]:
    """``(image, mask)`` pairs of a split (from ``{split}.txt`` where present, else the
    ``{split}/`` and ``{split}annot/`` folders) and one line per problem: a missing file, an image
    without a mask, two images of one stem.

    Raises:
        DataError: a missing root, an unknown split, a missing folder or list file.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"CamVid root not found: {root}")
    check_split(split, SPLITS, "CamVid")
    pairs: Pairs = []
    problems: list[str] = []
    for part in ("train", "val") if split == "trainval" else (split,):
        list_file = root / f"{part}.txt"
        if list_file.is_file():
            found = find_list_pairs(list_file, root)
        else:
            found = find_folder_pairs(root / part, root / f"{part}annot")
        pairs += found[0]
        problems += found[1]
    return pairs, problems


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
        pairs, problems = camvid_pairs(root, split)
        self.root = Path(root)
        self.split = split
        super().__init__(raise_first(pairs, problems, self.root), CLASSES, PALETTE, camvid_label_map(), transform)

"""Cityscapes, fine annotations (Cordts et al. 2016, https://arxiv.org/abs/1604.01685;
https://www.cityscapes-dataset.com/).

Expected tree (``root`` may be the folder holding ``leftImg8bit`` and ``gtFine``, or its parent
with a ``cityscapes`` subfolder)::

    leftImg8bit/{train,val,test}/{city}/{city}_{seq}_{frame}_leftImg8bit.png      RGB 2048x1024
    gtFine/{train,val,test}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png       mode-L label ids
    gtFine/{train,val,test}/{city}/{city}_{seq}_{frame}_gtFine_instanceIds.png    16-bit, for iIoU

Splits: ``train`` (2,975), ``val`` (500), ``test`` (1,525; its public masks are all "unlabeled")
and ``trainval``. Label ids are mapped by the official id -> trainId table to the 19 evaluated
classes; every other id becomes ``ignore_index`` 255. Instance ids are ``labelId * 1000 + k`` for
each object of a class with instances; :meth:`Cityscapes.load_instances` gives them to the iIoU
metric (:mod:`semseg.metrics.iiou`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from semseg.constants import IGNORE_INDEX
from semseg.data.base import PairTransform, SegmentationDataset
from semseg.data.io import read_mask
from semseg.data.layout import Pairs, check_split, find_root, label_table, raise_first, require_id_mask

# (label id, name, train id, has instances) from the official label table (cityscapesScripts
# helpers/labels.py), where train id 255 (IGNORE_INDEX) marks a class left out of evaluation.
# License plate (id -1) is stored nowhere in labelIds and is left out.
LABELS = (
    (0, "unlabeled", IGNORE_INDEX, False), (1, "ego vehicle", IGNORE_INDEX, False),
    (2, "rectification border", IGNORE_INDEX, False), (3, "out of roi", IGNORE_INDEX, False),
    (4, "static", IGNORE_INDEX, False), (5, "dynamic", IGNORE_INDEX, False), (6, "ground", IGNORE_INDEX, False),
    (7, "road", 0, False), (8, "sidewalk", 1, False), (9, "parking", IGNORE_INDEX, False),
    (10, "rail track", IGNORE_INDEX, False), (11, "building", 2, False), (12, "wall", 3, False),
    (13, "fence", 4, False), (14, "guard rail", IGNORE_INDEX, False), (15, "bridge", IGNORE_INDEX, False),
    (16, "tunnel", IGNORE_INDEX, False), (17, "pole", 5, False), (18, "polegroup", IGNORE_INDEX, False),
    (19, "traffic light", 6, False), (20, "traffic sign", 7, False), (21, "vegetation", 8, False),
    (22, "terrain", 9, False), (23, "sky", 10, False), (24, "person", 11, True), (25, "rider", 12, True),
    (26, "car", 13, True), (27, "truck", 14, True), (28, "bus", 15, True), (29, "caravan", IGNORE_INDEX, True),
    (30, "trailer", IGNORE_INDEX, True), (31, "train", 16, True), (32, "motorcycle", 17, True),
    (33, "bicycle", 18, True),
)  # fmt: skip
CLASSES = tuple(name for _, name, train_id, _ in sorted(LABELS, key=lambda r: r[2]) if train_id != IGNORE_INDEX)
PALETTE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip
SPLITS = ("train", "val", "test", "trainval")
IMAGE_SUFFIX = "_leftImg8bit.png"
MASK_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"


def cityscapes_label_map(ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Label id -> train id for ids 0..33, as an ``int64 (256,)`` lookup table; 255 -> ``ignore_index``.

    Ids 34..254 do not exist; they map to themselves so the dataset reports them as found in the file.
    """
    train_ids = {label_id: train_id for label_id, _, train_id, _ in LABELS} | {255: IGNORE_INDEX}
    return label_table(train_ids, size=256, ignore_index=ignore_index)


def cityscapes_root(root: str | Path) -> Path:
    """The folder holding ``leftImg8bit``: ``root`` itself or its ``cityscapes`` subfolder."""
    return find_root(root, ("cityscapes",), "leftImg8bit", "Cityscapes")


def cityscapes_pairs(root: str | Path, split: str) -> tuple[Pairs, list[str]]:
    """``(image, labelIds mask)`` pairs of a split and one line per file that does not fit the layout."""
    check_split(split, SPLITS, "Cityscapes")
    base = cityscapes_root(root)
    pairs: Pairs = []
    problems: list[str] = []
    for part in ("train", "val") if split == "trainval" else (split,):
        image_root, mask_root = base / "leftImg8bit" / part, base / "gtFine" / part
        missing = [f"folder not found: {d}" for d in (image_root, mask_root) if not d.is_dir()]
        if missing:
            problems += missing
            continue
        for city in sorted(d for d in image_root.iterdir() if d.is_dir()):
            for image in sorted(p for p in city.iterdir() if p.is_file()):
                if not image.name.endswith(IMAGE_SUFFIX):
                    problems.append(f"{image}: not a Cityscapes image name (expected *{IMAGE_SUFFIX})")
                    continue
                prefix = image.name[: -len(IMAGE_SUFFIX)]
                mask = mask_root / city.name / f"{prefix}{MASK_SUFFIX}"
                if mask.is_file():
                    pairs.append((image, mask))
                else:
                    problems.append(_missing_mask(image, mask))
    return pairs, problems


def _missing_mask(image: Path, mask: Path) -> str:
    """Name the missing mask, and what sits there instead when it is the wrong kind of file."""
    prefix = mask.name[: -len(MASK_SUFFIX)]
    others = sorted(p.name for p in mask.parent.glob(f"{prefix}*")) if mask.parent.is_dir() else []
    hint = f"; found {', '.join(others)} (wrong suffix: need *{MASK_SUFFIX})" if others else ""
    return f"image {image} has no mask {mask}{hint}"


class Cityscapes(SegmentationDataset):
    """Cityscapes fine annotations, 19 evaluated classes; every other label id is ``ignore_index``.

    Items are ``(image uint8 (3, H, W), mask int64 (H, W))``, after ``transform`` if given.

    Args:
        root: the folder with ``leftImg8bit/`` and ``gtFine/`` (or its parent, see the tree above).
        split: ``train``, ``val``, ``test`` or ``trainval``.
        transform: paired transform applied to every ``(image, mask)``.
    """

    def __init__(self, root: str | Path, split: str = "train", transform: PairTransform | None = None) -> None:
        pairs, problems = cityscapes_pairs(root, split)
        self.root = cityscapes_root(root)
        self.split = split
        label_map = cityscapes_label_map()
        super().__init__(raise_first(pairs, problems, self.root), CLASSES, PALETTE, label_map, transform)

    def load_mask(self, path: Path) -> torch.Tensor:
        """Train ids ``int64 (H, W)`` of a ``*_gtFine_labelIds.png``; a palette PNG is refused."""
        # labelIds are mode-L ids; the *_gtFine_color.png files are colours, not ids.
        require_id_mask(path)
        return super().load_mask(path)

    def instance_path(self, index: int) -> Path:
        """The ``*_gtFine_instanceIds.png`` beside the labelIds mask of item ``index``."""
        mask = self.pairs[index][1]
        return mask.with_name(mask.name[: -len(MASK_SUFFIX)] + INSTANCE_SUFFIX)

    def load_instances(self, index: int) -> torch.Tensor:
        """Instance ids ``int64 (H, W)`` of item ``index`` at full size, untransformed.

        Objects keep their official id ``labelId * 1000 + k``; pixels of no single object (stuff
        classes, and crowd regions stored as the bare label id) are 0, as the official evaluation
        counts only ids above 1000.
        """
        path = self.instance_path(index)
        require_id_mask(path)
        raw = read_mask(path, allow_palette=False).astype(np.int64)
        raw[raw <= 1000] = 0
        return torch.from_numpy(raw)


def train_id_of(name: str) -> int:
    """The train id of an evaluated class name (e.g. ``"car"`` -> 13)."""
    return CLASSES.index(name)

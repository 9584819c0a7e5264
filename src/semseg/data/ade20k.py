"""ADE20K, the SceneParsing benchmark release (Zhou et al. 2017, https://arxiv.org/abs/1608.05442;
http://sceneparsing.csail.mit.edu/).

Expected tree (``root`` may be ``ADEChallengeData2016`` or the folder holding it)::

    ADEChallengeData2016/
      images/training/ADE_train_00000001.jpg ...          20,210 images
      images/validation/ADE_val_00000001.jpg ...          2,000 images
      annotations/training/ADE_train_00000001.png ...     mode-L PNG, 0 = other, 1..150 = classes
      annotations/validation/ADE_val_00000001.png ...

Annotation 0 ("other objects") becomes ``ignore_index`` 255 and 1..150 become train ids 0..149
(the benchmark scores only the 150 classes). The test images (``release_test``) have no labels
and so are not a split here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from semseg.constants import IGNORE_INDEX
from semseg.data.base import PairTransform, SegmentationDataset
from semseg.data.folder import IMAGE_SUFFIXES, default_palette
from semseg.data.layout import Pairs, check_split, find_root, label_table, raise_first, require_id_mask

CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
    "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher",
    "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip
# A generated palette (distinct colours); the devkit's own colour table is not reproduced here.
PALETTE = tuple(default_palette(len(CLASSES) + 1)[1:])
SPLITS = ("train", "val")
FOLDERS = {"train": "training", "val": "validation"}


def ade20k_label_map(ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Raw 0 -> ``ignore_index``, 1..150 -> 0..149, as an ``int64 (255,)`` lookup table.

    Raw 151..254 map to themselves so the dataset's value check reports them as they are in the
    file; the table stops at 254, so a raw 255 is reported as having no entry.
    """
    train_ids = {0: IGNORE_INDEX, **{raw: raw - 1 for raw in range(1, len(CLASSES) + 1)}}
    return label_table(train_ids, size=255, ignore_index=ignore_index)


def ade20k_root(root: str | Path) -> Path:
    """The ``ADEChallengeData2016`` folder, given it or the folder holding it."""
    return find_root(root, ("ADEChallengeData2016",), "annotations", "ADE20K")


def ade20k_pairs(root: str | Path, split: str) -> tuple[Pairs, list[str]]:
    """Every image of the split with its annotation of the same stem, and the missing ones."""
    check_split(split, SPLITS, "ADE20K")
    base = ade20k_root(root)
    image_dir = base / "images" / FOLDERS[split]
    mask_dir = base / "annotations" / FOLDERS[split]
    problems = [f"folder not found: {d}" for d in (image_dir, mask_dir) if not d.is_dir()]
    if problems:
        return [], problems
    pairs = []
    for image in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        mask = mask_dir / f"{image.stem}.png"
        if mask.is_file():
            pairs.append((image, mask))
        else:
            problems.append(f"image {image} has no annotation {mask}")
    return pairs, problems


class ADE20K(SegmentationDataset):
    """ADE20K SceneParsing, 150 classes; "other" (raw 0) is ``ignore_index`` 255.

    Items are ``(image uint8 (3, H, W), mask int64 (H, W))``, after ``transform`` if given.

    Args:
        root: ``ADEChallengeData2016`` or the folder holding it (tree above).
        split: ``train`` or ``val``.
        transform: paired transform applied to every ``(image, mask)``.
    """

    def __init__(self, root: str | Path, split: str = "train", transform: PairTransform | None = None) -> None:
        pairs, problems = ade20k_pairs(root, split)
        self.root = ade20k_root(root)
        self.split = split
        super().__init__(raise_first(pairs, problems, self.root), CLASSES, PALETTE, ade20k_label_map(), transform)

    def load_mask(self, path: Path) -> torch.Tensor:
        """Train ids ``int64 (H, W)`` of an annotation; a palette PNG is refused."""
        # Annotations are mode-L ids; a palette PNG here is someone's colour rendering.
        require_id_mask(path)
        return super().load_mask(path)

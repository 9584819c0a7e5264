"""PASCAL VOC 2012 segmentation (Everingham et al., http://host.robots.ox.ac.uk/pascal/VOC/voc2012/)
and its ``train_aug`` extension from the Semantic Boundaries Dataset (Hariharan et al. 2011,
http://home.bharathh.info/pubs/codes/SBD/download.html).

Expected tree (``root`` may be ``VOC2012``, ``VOCdevkit`` or the folder holding ``VOCdevkit``)::

    VOCdevkit/VOC2012/
      JPEGImages/2007_000032.jpg ...
      SegmentationClass/2007_000032.png ...     palette PNGs: index = class id 0..20, 255 = border
      ImageSets/Segmentation/train.txt val.txt trainval.txt     one image id per line
      SegmentationClassAug/*.png  ImageSets/Segmentation/train_aug.txt    (written by convert_sbd)

Splits: ``train`` (1,464), ``val`` (1,449), ``trainval`` (2,913) and ``train_aug`` (10,582 after
:func:`convert_sbd`). The 255 object borders are ``ignore_index``; no other remapping is needed,
so ``label_map`` is ``None`` and any index 21..254 is reported as an error naming the file.

``train_aug`` is the union of SBD train + val and VOC train, minus VOC val (so no validation
image leaks into training). Where an image has both, the official VOC mask wins: it is the finer
annotation and keeps the ignored borders.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from semseg.data.base import PairTransform, SegmentationDataset
from semseg.data.folder import default_palette
from semseg.data.io import read_mask
from semseg.data.layout import Pairs, check_split, find_root, raise_first, read_id_list
from semseg.errors import DataError

CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
# VOC's own colour map is the bit-interleaved one, so the palette PNGs and overlays agree.
PALETTE = tuple(default_palette(len(CLASSES)))
SPLITS = ("train", "val", "trainval", "train_aug")


def voc_root(root: str | Path) -> Path:
    """The ``VOC2012`` folder, given it, ``VOCdevkit`` or the folder holding ``VOCdevkit``."""
    return find_root(root, ("VOC2012", "VOCdevkit/VOC2012"), "JPEGImages", "VOC 2012")


def voc_pairs(root: str | Path, split: str) -> tuple[Pairs, list[str]]:
    """``(image, mask)`` pairs of a split and one line per missing image or mask."""
    check_split(split, SPLITS, "VOC")
    base = voc_root(root)
    list_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
    if split == "train_aug" and not list_file.is_file():
        raise DataError(
            f"{list_file} not found: create train_aug once with `python -m semseg.data.voc SBD_ROOT {base}`"
        )
    mask_dir = base / ("SegmentationClassAug" if split == "train_aug" else "SegmentationClass")
    pairs, problems = [], []
    for image_id in read_id_list(list_file):
        image, mask = base / "JPEGImages" / f"{image_id}.jpg", mask_dir / f"{image_id}.png"
        if not image.is_file():
            problems.append(f"{list_file}: image {image_id} not found: {image}")
        elif not mask.is_file():
            problems.append(f"{list_file}: image {image_id} has no mask {mask}")
        else:
            pairs.append((image, mask))
    return pairs, problems


class VOCSegmentation(SegmentationDataset):
    """PASCAL VOC 2012, 21 classes (background + 20 objects), ``ignore_index`` 255 on borders.

    Items are ``(image uint8 (3, H, W), mask int64 (H, W))``, after ``transform`` if given.

    Args:
        root: ``VOC2012``, ``VOCdevkit`` or the folder holding ``VOCdevkit`` (tree above).
        split: ``train``, ``val``, ``trainval`` or ``train_aug``.
        transform: paired transform applied to every ``(image, mask)``.
    """

    def __init__(self, root: str | Path, split: str = "train", transform: PairTransform | None = None) -> None:
        pairs, problems = voc_pairs(root, split)
        self.root = voc_root(root)
        self.split = split
        super().__init__(raise_first(pairs, problems, self.root), CLASSES, PALETTE, None, transform)


def sbd_root(root: str | Path) -> Path:
    """The SBD ``dataset`` folder (with ``cls/``), given it, ``benchmark_RELEASE`` or its parent."""
    return find_root(root, ("dataset", "benchmark_RELEASE/dataset"), "cls", "SBD")


def sbd_mask(mat_path: Path, loadmat: Callable[..., dict]) -> np.ndarray:
    """The class mask (``uint8 (H, W)``, ids 0..20) stored as ``GTcls.Segmentation`` in an SBD
    ``cls/*.mat`` file."""
    try:
        mat = loadmat(str(mat_path), squeeze_me=True, struct_as_record=False)
    except FileNotFoundError as exc:
        raise DataError(f"SBD annotation not found: {mat_path}") from exc
    except Exception as exc:  # scipy raises several unrelated types for corrupt files
        raise DataError(f"cannot read SBD annotation {mat_path}: {exc}") from exc
    gt = mat.get("GTcls")
    seg = getattr(gt, "Segmentation", None)
    if seg is None:
        raise DataError(f"{mat_path}: no GTcls.Segmentation field (is this an SBD cls/*.mat file?)")
    seg = np.asarray(seg)
    if seg.ndim != 2 or seg.size == 0 or int(seg.max()) >= len(CLASSES):
        raise DataError(f"{mat_path}: GTcls.Segmentation is not an (H, W) map of class ids 0..{len(CLASSES) - 1}")
    return seg.astype(np.uint8)


def _scipy_loadmat() -> Callable[..., dict]:
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise DataError(
            "converting SBD's cls/*.mat files needs scipy, which semseg does not install: pip install scipy"
        ) from exc
    return loadmat


def save_palette_mask(mask: np.ndarray, path: Path) -> None:
    """Write class ids as a palette PNG in VOC's colours (what ``SegmentationClass`` holds)."""
    im = Image.fromarray(mask.astype(np.uint8))
    im.putpalette([v for colour in default_palette(256) for v in colour])  # "L" -> "P", same indices
    im.save(path)


def convert_sbd(
    sbd: str | Path,
    voc: str | Path,
    loadmat: Callable[..., dict] | None = None,
    overwrite: bool = False,
) -> Path:
    """Create the ``train_aug`` split once: masks in ``SegmentationClassAug`` and its list file.

    Args:
        sbd: SBD ``dataset`` folder (``cls/``, ``train.txt``, ``val.txt``), ``benchmark_RELEASE``
            or its parent.
        voc: the VOC 2012 root (see :class:`VOCSegmentation`).
        loadmat: the ``.mat`` reader; default ``scipy.io.loadmat`` (scipy is imported only here).
        overwrite: rewrite masks that already exist (otherwise a rerun resumes where it stopped).

    Returns:
        The path of ``ImageSets/Segmentation/train_aug.txt``.
    """
    sbd_dir, voc_dir = sbd_root(sbd), voc_root(voc)
    lists = voc_dir / "ImageSets" / "Segmentation"
    voc_train = read_id_list(lists / "train.txt")
    voc_val = set(read_id_list(lists / "val.txt"))
    sbd_ids = read_id_list(sbd_dir / "train.txt") + read_id_list(sbd_dir / "val.txt")
    ids = sorted(set(sbd_ids).union(voc_train) - voc_val)
    official = set(voc_train)
    out_dir = voc_dir / "SegmentationClassAug"
    out_dir.mkdir(exist_ok=True)
    for image_id in ids:
        out = out_dir / f"{image_id}.png"
        if out.is_file() and not overwrite:
            continue
        if image_id in official:
            mask = read_mask(voc_dir / "SegmentationClass" / f"{image_id}.png")
        else:
            mask = sbd_mask(sbd_dir / "cls" / f"{image_id}.mat", loadmat or _scipy_loadmat())
        save_palette_mask(mask, out)
    list_file = lists / "train_aug.txt"
    list_file.write_text("".join(f"{i}\n" for i in ids))
    return list_file


def main(argv: list[str] | None = None) -> int:
    """``python -m semseg.data.voc SBD VOC``: run :func:`convert_sbd`; exit code 2 on a data error."""
    parser = argparse.ArgumentParser(
        prog="python -m semseg.data.voc", description="Create VOC 2012 train_aug from the SBD release (needs scipy)."
    )
    parser.add_argument("sbd", help="SBD benchmark_RELEASE/dataset folder (or a parent)")
    parser.add_argument("voc", help="VOC 2012 root (VOC2012, VOCdevkit or its parent)")
    parser.add_argument("--overwrite", action="store_true", help="rewrite masks that already exist")
    args = parser.parse_args(argv)
    try:
        list_file = convert_sbd(args.sbd, args.voc, overwrite=args.overwrite)
    except DataError as exc:
        print(f"error: {exc}")
        return 2
    print(f"wrote {len(read_id_list(list_file))} ids to {list_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

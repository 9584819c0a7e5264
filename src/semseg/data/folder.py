"""A dataset from an image folder and a mask folder (matched by file stem), or a list file of
``image mask`` pairs. Masks hold train ids ``0..num_classes-1`` and ``ignore_index``.

Expected tree::

    root/
      images/  a.jpg b.jpg ...
      masks/   a.png b.png ...      (same stems; single-channel label ids)
    or a list file with one "images/a.jpg masks/a.png" pair per line (relative to its folder)

By split (:meth:`FolderDataset.from_split`, what ``build_dataset("folder", ...)`` uses): the list
file ``root/{split}.txt`` if it exists, else the subfolder ``root/{split}/`` (with its own
``images/`` and ``masks/``) if it exists, else ``root`` itself for every split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from semseg.constants import IGNORE_INDEX
from semseg.data.base import PairTransform, SegmentationDataset
from semseg.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def pairs_from_folders(image_dir: Path, mask_dir: Path) -> list[tuple[Path, Path]]:
    """Pair every image with the mask of the same stem; a missing mask is an error naming it."""
    if not image_dir.is_dir():
        raise DataError(f"image folder not found: {image_dir}")
    if not mask_dir.is_dir():
        raise DataError(f"mask folder not found: {mask_dir}")
    masks = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    pairs = []
    for image in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if image.stem not in masks:
            raise DataError(f"image {image} has no mask {mask_dir / (image.stem + '.png')}")
        pairs.append((image, masks[image.stem]))
    if not pairs:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}")
    return pairs


def pairs_from_list(list_file: Path, base: Path | None = None) -> list[tuple[Path, Path]]:
    """Read ``image mask`` lines (relative to ``base``, default the list file's folder)."""
    if not list_file.is_file():
        raise DataError(f"list file not found: {list_file}")
    base = base or list_file.parent
    pairs = []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"{list_file}:{n}: expected 'image mask', got {line!r}")
        image, mask = base / parts[0], base / parts[1]
        if not image.is_file():
            raise DataError(f"{list_file}:{n}: image not found: {image}")
        if not mask.is_file():
            raise DataError(f"{list_file}:{n}: image {image.name} has no mask {mask}")
        pairs.append((image, mask))
    return pairs


class FolderDataset(SegmentationDataset):
    """Images + masks from ``root/images`` and ``root/masks`` (or ``list_file``).

    Items are ``(image uint8 (3, H, W), mask int64 (H, W))``, after ``transform`` if given.

    Args:
        root: dataset folder.
        classes: class names (index = label id).
        palette: colours for overlays; default a fixed generated palette.
        list_file: optional list of pairs relative to ``root``.
        image_dir: image subfolder of ``root`` (without ``list_file``).
        mask_dir: mask subfolder of ``root`` (without ``list_file``).
        transform: paired transform applied to every ``(image, mask)``.
        ignore_index: the label left out of loss and metrics.
    """

    def __init__(
        self,
        root: str | Path,
        classes: Sequence[str],
        palette: Sequence[tuple[int, int, int]] | None = None,
        list_file: str | Path | None = None,
        image_dir: str = "images",
        mask_dir: str = "masks",
        transform: PairTransform | None = None,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"dataset folder not found: {root}")
        if list_file is not None:
            pairs = pairs_from_list(root / list_file, root)
        else:
            pairs = pairs_from_folders(root / image_dir, root / mask_dir)
        super().__init__(pairs, classes, palette or default_palette(len(classes)), None, transform, ignore_index)

    @classmethod
    def from_split(
        cls,
        root: str | Path,
        split: str,
        classes: Sequence[str],
        transform: PairTransform | None = None,
    ) -> FolderDataset:
        """The ``split`` of a folder dataset: ``root/{split}.txt`` (pairs relative to ``root``) if
        that list file exists, else the ``root/{split}`` subfolder if it exists, else ``root``.

        A folder with neither list files nor split subfolders thus serves as every split; any
        split name is accepted.
        """
        root = Path(root)
        list_file = f"{split}.txt"
        if (root / list_file).is_file():
            return cls(root, classes, list_file=list_file, transform=transform)
        sub = root / split
        return cls(sub if sub.is_dir() else root, classes, transform=transform)


def default_palette(n: int) -> list[tuple[int, int, int]]:
    """PASCAL VOC's bit-interleaved colour map, distinct for up to 256 classes."""
    colours = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours.append((r, g, b))
    return colours

"""A dataset from an image folder and a mask folder (matched by file stem), or a list file of
``image mask`` pairs. Masks hold train ids ``0..num_classes-1`` and ``ignore_index``.

Expected tree::

    root/
      images/  a.jpg b.jpg ...
      masks/   a.png b.png ...      (same stems; single-channel label ids)
    or a list file with one "images/a.jpg masks/a.png" pair per line (relative to its folder;
    separate the two names with a tab when they contain spaces)

Two images with one stem (``a.jpg`` and ``a.png``) would share one mask: both are refused.

By split (:meth:`FolderDataset.from_split`, what ``build_dataset("folder", ...)`` uses): the list
file ``root/{split}.txt`` if it exists, else the subfolder ``root/{split}/`` (with its own
``images/`` and ``masks/``) if it exists. A root with no split structure at all (no ``*.txt``
list file, no subfolder holding ``images/`` or ``masks/``) serves as every split; in a root that
has some, an unknown split is a :class:`DataError` listing the splits found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from semseg.constants import IGNORE_INDEX
from semseg.data.base import PairTransform, SegmentationDataset
from semseg.data.layout import Pairs, raise_first, read_text_file
from semseg.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".npy")
"""Image files a folder dataset finds (``.npy``: multi-band arrays, see :mod:`semseg.data.io`)."""
MASK_SUFFIXES = tuple(s for s in IMAGE_SUFFIXES if s != ".npy")


def _files_by_stem(folder: Path, what: str, problems: list[str]) -> tuple[dict[str, Path], set[str]]:
    """The image files of ``folder`` by stem, and the stems held by several files (each reported
    in ``problems`` and left out)."""
    suffixes = IMAGE_SUFFIXES if what == "image" else MASK_SUFFIXES
    by_stem: dict[str, list[Path]] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes):
        by_stem.setdefault(path.stem, []).append(path)
    unique, shared = {}, set()
    for stem, paths in by_stem.items():
        if len(paths) == 1:
            unique[stem] = paths[0]
        else:
            shared.add(stem)
            names = " and ".join(str(p) for p in paths)
            problems.append(f"{what}s {names} share the stem {stem!r} (one mask per stem); keep one of them")
    return unique, shared


def find_folder_pairs(image_dir: Path, mask_dir: Path) -> tuple[Pairs, list[str]]:
    """Every image of ``image_dir`` with the mask of the same stem in ``mask_dir``, and one line per
    image without a mask and per stem held by two files.

    Raises:
        DataError: a folder is missing, or ``image_dir`` holds no image.
    """
    if not image_dir.is_dir():
        raise DataError(f"image folder not found: {image_dir}")
    if not mask_dir.is_dir():
        raise DataError(f"mask folder not found: {mask_dir}")
    problems: list[str] = []
    images, shared_images = _files_by_stem(image_dir, "image", problems)
    masks, shared_masks = _files_by_stem(mask_dir, "mask", problems)
    if not images and not shared_images:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}")
    pairs = []
    for stem, image in sorted(images.items(), key=lambda item: item[1]):
        if stem in masks:
            pairs.append((image, masks[stem]))
        elif stem not in shared_masks:
            problems.append(f"image {image} has no mask {mask_dir / (stem + '.png')}")
    return pairs, problems


def pairs_from_folders(image_dir: Path, mask_dir: Path) -> Pairs:
    """Pair every image with the mask of the same stem; the first problem of
    :func:`find_folder_pairs` (a missing mask, a stem held by two images) is a :class:`DataError`."""
    pairs, problems = find_folder_pairs(image_dir, mask_dir)
    return raise_first(pairs, problems, image_dir)


def is_file(path: Path) -> bool:
    """``path.is_file()``, but ``False`` (not an exception) for a name the system cannot even
    look up (too long, a NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _split_line(line: str, base: Path) -> tuple[str, str] | None:
    """The two names of a list-file line, or ``None`` when it does not hold exactly two.

    A tab separates names that contain spaces; without one, a line of more than two words is
    accepted when exactly one split point gives two existing files.
    """
    text = line.strip()
    if "\t" in text:
        parts = [p.strip() for p in text.split("\t") if p.strip()]
        return (parts[0], parts[1]) if len(parts) == 2 else None
    parts = text.split()
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) < 2:
        return None
    fits = [
        (text[: m.start()], text[m.end() :])
        for m in re.finditer(r"\s+", text)
        if is_file(base / text[: m.start()]) and is_file(base / text[m.end() :])
    ]
    return fits[0] if len(fits) == 1 else None


def find_list_pairs(list_file: Path, base: Path | None = None) -> tuple[Pairs, list[str]]:
    """The ``image mask`` pairs of a list file (names relative to ``base``, default the list
    file's folder; blank lines and ``#`` comments skipped), and one line per malformed line or
    missing file, each naming the list file and line number.

    Raises:
        DataError: the list file is missing or not UTF-8 text.
    """
    if not is_file(list_file):
        raise DataError(f"list file not found: {list_file}")
    base = base or list_file.parent
    pairs, problems = [], []
    for n, line in enumerate(read_text_file(list_file).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        names = _split_line(line, base)
        if names is None:
            problems.append(f"{list_file}:{n}: expected 'image mask' (a tab between names with spaces), got {line!r}")
            continue
        image, mask = base / names[0], base / names[1]
        if not is_file(image):
            problems.append(f"{list_file}:{n}: image not found: {image}")
        elif not is_file(mask):
            problems.append(f"{list_file}:{n}: image {image.name} has no mask {mask}")
        else:
            pairs.append((image, mask))
    return pairs, problems


def pairs_from_list(list_file: Path, base: Path | None = None) -> Pairs:
    """Read ``image mask`` lines (relative to ``base``, default the list file's folder); the first
    problem of :func:`find_list_pairs` (a malformed line, a missing file) is a :class:`DataError`."""
    pairs, problems = find_list_pairs(list_file, base)
    if problems:
        return raise_first(pairs, problems, list_file)
    return pairs


def is_split_folder(path: Path) -> bool:
    """Whether ``path`` is a split subfolder: a folder holding ``images/`` or ``masks/``."""
    try:
        return path.is_dir() and ((path / "images").is_dir() or (path / "masks").is_dir())
    except (OSError, ValueError):  # a name too long to look up, a NUL byte
        return False


def folder_splits(root: Path) -> list[str]:
    """The split names found in ``root``: its ``*.txt`` list files and split subfolders."""
    names = {p.stem for p in root.glob("*.txt") if is_file(p)}
    names |= {p.name for p in root.iterdir() if p.name not in ("images", "masks") and is_split_folder(p)}
    return sorted(names)


def split_source(root: Path, split: str) -> tuple[Path, str | None]:
    """Where ``split`` of the folder dataset at ``root`` lives: ``(root, "{split}.txt")`` for a
    list file, ``(root / split, None)`` for a split subfolder, ``(root, None)`` for a root without
    any split structure.

    Raises:
        DataError: ``root`` has list files or split subfolders, but none for ``split``.
    """
    if is_file(root / f"{split}.txt"):
        return root, f"{split}.txt"
    if split not in ("images", "masks") and is_split_folder(root / split):
        return root / split, None
    found = folder_splits(root)
    if found:
        raise DataError(f"unknown folder split {split!r} in {root}; found: {', '.join(found)}")
    return root, None


def folder_pairs(root: str | Path, split: str) -> tuple[Pairs, list[str]]:
    """``(image, mask)`` pairs of a split of a folder dataset and one line per problem (what
    ``semseg data check`` lists); the split is resolved as :meth:`FolderDataset.from_split` does."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    base, list_file = split_source(root, split)
    if list_file is not None:
        return find_list_pairs(base / list_file, base)
    return find_folder_pairs(base / "images", base / "masks")


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
            pairs = raise_first(*find_list_pairs(root / list_file, root), root / list_file)
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
        that list file exists, else the ``root/{split}`` subfolder if it holds ``images/`` or
        ``masks/``, else ``root`` itself when ``root`` has no split structure at all.

        Raises:
            DataError: ``root`` is missing; or it has list files or split subfolders but none for
                ``split`` (the message lists those found); or a problem in the split's files.
        """
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"dataset folder not found: {root}")
        base, list_file = split_source(root, split)
        return cls(base, classes, list_file=list_file, transform=transform)


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

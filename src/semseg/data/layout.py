"""Helpers shared by the loaders of official dataset layouts (VOC, ADE20K, Cityscapes).

Each loader finds its pairs with a ``*_pairs(root, split)`` function that returns the pairs *and*
a list of problems (one line per missing file) instead of stopping at the first: the dataset
constructor raises the first problem as a :class:`DataError`, while ``semseg data check`` reports
them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from semseg.constants import IGNORE_INDEX
from semseg.data.io import open_checked
from semseg.errors import DataError

Pairs = list[tuple[Path, Path]]


def find_root(root: str | Path, candidates: Sequence[str], marker: str, dataset: str) -> Path:
    """The folder holding ``marker``: ``root`` itself or ``root / c`` for a candidate subfolder.

    Users pass either the folder an archive unpacks to or its parent; both are accepted. The
    error lists every place that was looked at.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{dataset} root not found: {root}")
    tried = [root, *(root / c for c in candidates)]
    for folder in tried:
        if (folder / marker).exists():
            return folder
    where = ", ".join(str(t / marker) for t in tried)
    raise DataError(f"{dataset} layout not found under {root}: none of {where} exists")


def label_table(
    train_ids: Mapping[int, int], size: int = 256, ignore_index: int = IGNORE_INDEX, fill: int | None = None
) -> np.ndarray:
    """A raw-id -> train-id lookup table (``int64 (size,)``) for :class:`SegmentationDataset`.

    Args:
        train_ids: raw id -> train id; a train id of :data:`~semseg.constants.IGNORE_INDEX` (the
            official tables' "not evaluated") becomes ``ignore_index``.
        size: table length; a raw value ``>= size`` is reported by the dataset as having no entry.
        ignore_index: the train id of ignored pixels.
        fill: train id of every raw id not in ``train_ids``; ``None`` maps them to themselves, so
            the dataset's value check reports an unexpected raw id as it stands in the file.
    """
    table = np.arange(size, dtype=np.int64) if fill is None else np.full(size, fill, dtype=np.int64)
    for raw, train_id in train_ids.items():
        table[raw] = ignore_index if train_id == IGNORE_INDEX else train_id
    return table


def check_split(split: str, splits: Sequence[str], dataset: str) -> None:
    """Raise a :class:`DataError` listing ``splits`` when ``split`` is not one of them."""
    if split not in splits:
        raise DataError(f"unknown {dataset} split {split!r}; allowed: {', '.join(splits)}")


def read_id_list(path: Path) -> list[str]:
    """Image ids from a split file, one per line (blank lines skipped)."""
    if not path.is_file():
        raise DataError(f"split list not found: {path}")
    return [line.split()[0] for line in read_text_file(path, "split list").splitlines() if line.strip()]


def read_text_file(path: Path, what: str = "list file") -> str:
    """The UTF-8 text of ``path``; an unreadable or non-UTF-8 file is a :class:`DataError` naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def raise_first(pairs: Pairs, problems: list[str], where: Path) -> Pairs:
    """Raise the first problem (and how many more there are), or the empty-split error."""
    if problems:
        more = (
            f" (and {len(problems) - 1} more; run `semseg data check` for the full list)" if len(problems) > 1 else ""
        )
        raise DataError(problems[0] + more)
    if not pairs:
        raise DataError(f"no image/mask pairs found in {where}")
    return pairs


def require_id_mask(path: Path) -> None:
    """Refuse a palette (colour) PNG where single-channel label ids are expected.

    Only the header is read, so this costs little next to decoding the mask. A missing or
    unreadable file is left to :func:`semseg.data.io.read_mask`, which names it.
    """
    try:
        with open_checked(path, "mask") as im:
            mode = im.mode
    except DataError:
        return
    if mode == "P":
        raise DataError(f"{path}: palette (colour) mask where label ids are expected (a mode 'L' or 16-bit PNG)")

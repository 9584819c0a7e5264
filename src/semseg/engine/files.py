"""Writing into a run folder without ever leaving a half-written file: every file is written
under a temporary name and renamed over the old one (atomic on POSIX)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def save_png_atomic(image: Image.Image, path: Path) -> None:
    """Save ``image`` as PNG at ``path`` in one rename (the temporary name keeps the suffix so
    PIL picks the format)."""
    tmp = path.with_name(path.stem + ".tmp.png")
    image.save(tmp)
    tmp.replace(path)


def save_label_png(labels: np.ndarray, path: Path, palette: Sequence[Sequence[int]] | None = None) -> None:
    """A label map as PNG, atomically: with a palette (at most 256 classes) a palette ("P" mode)
    PNG as PASCAL VOC's, which viewers show in colour and which reads back as the label ids;
    without one, a plain 8- or 16-bit grey PNG.

    Shape: ``labels`` ``(H, W)`` integer ids.
    """
    if palette is not None and len(palette) <= 256 and labels.max(initial=0) < 256:
        image = Image.fromarray(labels.astype(np.uint8), mode="P")
        flat = [int(v) for colour in palette for v in colour]
        image.putpalette(flat + [0] * (768 - len(flat)))
    else:
        image = Image.fromarray(labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16))
    save_png_atomic(image, path)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line (a log record); a line is written in one call, so an interrupted run
    leaves at most the last line incomplete."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")

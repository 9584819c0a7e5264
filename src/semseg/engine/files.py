"""Writing into a run folder without ever leaving a half-written file: every file is written
under a temporary name and renamed over the old one (atomic on POSIX)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line (a log record); a line is written in one call, so an interrupted run
    leaves at most the last line incomplete."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")

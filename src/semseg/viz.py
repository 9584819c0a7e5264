"""Colouring label maps and blending them over images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from semseg.constants import IGNORE_INDEX


def colorize(
    labels: torch.Tensor | np.ndarray, palette: Sequence[tuple[int, int, int]], ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """``(H, W)`` label ids -> ``(H, W, 3)`` uint8 colours; ignored pixels are black."""
    lab = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    lab = lab.astype(np.int64)
    # One row per id up to the largest of: the palette, the ignore label, the ids present (a
    # dataset of more than 256 classes has 16-bit masks).
    size = max(256, len(palette), ignore_index + 1, int(lab.max()) + 1 if lab.size else 0)
    table = np.zeros((size, 3), dtype=np.uint8)
    if len(palette):
        table[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    if ignore_index >= 0:
        table[ignore_index] = 0
    return table[np.clip(lab, 0, size - 1)]


def overlay(
    image: np.ndarray, labels: torch.Tensor | np.ndarray, palette: Sequence[tuple[int, int, int]], alpha: float = 0.5
) -> np.ndarray:
    """Blend the colour map over an ``(H, W, 3)`` uint8 image."""
    colours = colorize(labels, palette).astype(np.float32)
    return (image.astype(np.float32) * (1 - alpha) + colours * alpha).round().clip(0, 255).astype(np.uint8)


def side_by_side(*panels: np.ndarray) -> np.ndarray:
    """Concatenate equal-height ``(H, W, 3)`` panels horizontally with a 4-pixel white gap."""
    h = panels[0].shape[0]
    gap = np.full((h, 4, 3), 255, dtype=np.uint8)
    out = [panels[0]]
    for p in panels[1:]:
        out += [gap, p]
    return np.concatenate(out, axis=1)


def with_legend(
    image: np.ndarray, class_names: Sequence[str], palette: Sequence[tuple[int, int, int]], ids: Sequence[int]
) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8 with a legend strip below it: a colour swatch and the name of
    each class in ``ids`` (typically the classes present in the prediction), wrapped to the width.

    Shape: ``(H, W, 3)`` -> ``(H + rows * 16 + 4, W, 3)``.
    """
    from PIL import Image, ImageDraw

    w = image.shape[1]
    entries = [(int(i), str(class_names[i]) if i < len(class_names) else str(i)) for i in ids]
    # Lay the entries out left to right; ~6 px per character in PIL's default bitmap font.
    rows: list[list[tuple[int, str, int]]] = [[]]
    x = 4
    for i, name in entries:
        width = 14 + 6 * len(name) + 10
        if rows[-1] and x + width > w:
            rows.append([])
            x = 4
        rows[-1].append((i, name, x))
        x += width
    strip = Image.new("RGB", (w, 16 * len(rows) + 4), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for r, row in enumerate(rows):
        y = 2 + 16 * r
        for i, name, x0 in row:
            colour = tuple(palette[i]) if i < len(palette) else (0, 0, 0)
            draw.rectangle([x0, y + 2, x0 + 10, y + 12], fill=colour, outline=(0, 0, 0))
            draw.text((x0 + 14, y + 1), name, fill=(0, 0, 0))
    return np.concatenate([image, np.asarray(strip, dtype=np.uint8)], axis=0)

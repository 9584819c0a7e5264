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

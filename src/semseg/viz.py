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
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    table[ignore_index % 256] = 0
    return table[lab.astype(np.int64) % 256]


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

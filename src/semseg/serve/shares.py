"""Per-class area shares of a label map: which part of the picture each class covers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ClassShare:
    """One class's area in a label map: ``pixels`` and ``percent`` (of all pixels, rounded to
    ``decimals`` places so that the rounded shares of one map add up to exactly 100)."""

    class_id: int
    name: str
    pixels: int
    percent: float


def area_shares(labels: torch.Tensor | np.ndarray, class_names: Sequence[str], decimals: int = 2) -> list[ClassShare]:
    """The classes present in ``labels`` ``(H, W)``, largest area first.

    Percentages are rounded by the largest-remainder method: each share is floored to
    ``decimals`` places, and the units still missing from 100 go to the shares that lost most in
    the flooring. Plain rounding can show 99.99 % or 100.01 % in total; this never does.
    """
    lab = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    ids, counts = np.unique(lab.astype(np.int64).ravel(), return_counts=True)
    total = int(counts.sum())
    if total == 0:
        return []
    unit = 10**decimals
    # Integer arithmetic, in units of 10**-decimals percent: no float ever rounds the wrong way.
    scaled = counts.astype(np.int64) * 100 * unit
    floored, remainder = scaled // total, scaled % total
    missing = 100 * unit - int(floored.sum())
    # The largest remainders get the missing units; ties go to the larger class.
    order = np.lexsort((-counts, -remainder))
    floored[order[:missing]] += 1
    shares = [
        ClassShare(int(i), str(class_names[i]) if 0 <= i < len(class_names) else f"label {i}", int(c), int(f) / unit)
        for i, c, f in zip(ids, counts, floored, strict=True)
    ]
    return sorted(shares, key=lambda s: (-s.pixels, s.class_id))

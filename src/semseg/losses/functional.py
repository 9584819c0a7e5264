"""Pixel-wise losses.

Segmentation is per-pixel classification: with logits ``(N, C, H, W)`` every labelled pixel of
every image is one sample, so a mini-batch holds ``N * H * W`` samples (minus ignored pixels).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from semseg.constants import IGNORE_INDEX
from semseg.errors import DataError


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Mean cross-entropy over labelled pixels.

    Args:
        logits: ``(N, C, H, W)`` unnormalised scores.
        target: ``(N, H, W)`` int64 class ids, ``ignore_index`` for pixels left out.
        weight: optional ``(C,)`` class weights; the mean is then weighted (as
            ``torch.nn.functional.cross_entropy``: sum of ``w[y] * nll`` over sum of ``w[y]``).
        ignore_index: target value of pixels left out.

    Returns a scalar; 0 (with a gradient path) when every pixel is ignored.
    """
    if logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise DataError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} disagree on N, H, W")
    if not (target != ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)

"""Pixel-wise losses.

Segmentation is per-pixel classification: with logits ``(N, C, H, W)`` every labelled pixel of
every image is one sample, so a mini-batch holds ``N * H * W`` samples (minus ignored pixels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from semseg.errors import DataError


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = 255,
) -> Tensor:
    """Mean cross-entropy over labelled pixels.

    Args:
        logits: ``(N, C, H, W)`` unnormalised scores.
        target: ``(N, H, W)`` int64 class ids, ``ignore_index`` for pixels left out.
        weight: optional ``(C,)`` class weights; the mean is then weighted (as
            ``torch.nn.functional.cross_entropy``: sum of ``w[y] * nll`` over sum of ``w[y]``).

    Returns a scalar; 0 (with a gradient path) when every pixel is ignored.
    """
    if logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise DataError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} disagree on N, H, W")
    if not (target != ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)


def median_frequency_weights(class_pixels: Tensor, image_pixels: Tensor) -> Tensor:
    """Median-frequency balancing (Eigen and Fergus, https://arxiv.org/abs/1411.4734), as used by
    SegNet on CamVid.

    ``freq[c] = class_pixels[c] / image_pixels[c]`` where ``image_pixels[c]`` is the total pixel
    count of the images in which class ``c`` appears; ``weight[c] = median(freq) / freq[c]``.
    Classes that never appear get weight 0.

    Args:
        class_pixels: ``(C,)`` labelled pixels of each class over the dataset.
        image_pixels: ``(C,)`` pixels of the images that contain each class.
    """
    class_pixels = class_pixels.double()
    image_pixels = image_pixels.double()
    present = class_pixels > 0
    freq = torch.zeros_like(class_pixels)
    freq[present] = class_pixels[present] / image_pixels[present]
    median = freq[present].median()
    weights = torch.zeros_like(freq)
    weights[present] = median / freq[present]
    return weights.float()


def class_statistics(masks, num_classes: int, ignore_index: int = 255) -> tuple[Tensor, Tensor]:  # type: ignore[no-untyped-def]
    """Per-class pixel counts and pixels of the images containing each class, from an iterable
    of ``(H, W)`` int64 masks. The numbers behind :func:`median_frequency_weights`."""
    class_pixels = torch.zeros(num_classes, dtype=torch.float64)
    image_pixels = torch.zeros(num_classes, dtype=torch.float64)
    for mask in masks:
        labelled = mask[mask != ignore_index]
        counts = torch.bincount(labelled.reshape(-1), minlength=num_classes)[:num_classes].double()
        class_pixels += counts
        image_pixels += (counts > 0).double() * mask.numel()
    return class_pixels, image_pixels

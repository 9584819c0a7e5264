"""Per-class pixel statistics of a dataset's masks, and the class weights derived from them.

Used by ``semseg data check`` (its per-class table) and by the trainer's median-frequency class
weights. Counts are of train ids, i.e. after the dataset's label mapping.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from semseg.constants import IGNORE_INDEX


def class_statistics(
    masks: Iterable[Tensor], num_classes: int, ignore_index: int = IGNORE_INDEX
) -> tuple[Tensor, Tensor]:
    """Per-class pixel counts and pixels of the images containing each class.

    Args:
        masks: ``(H, W)`` int64 train-id masks (any iterable, consumed once).
        num_classes: number of classes ``C``.
        ignore_index: label of pixels that are not counted.

    Returns:
        ``(class_pixels, image_pixels)``, both float64 ``(C,)``: the numbers behind
        :func:`median_frequency_weights`.
    """
    class_pixels = torch.zeros(num_classes, dtype=torch.float64)
    image_pixels = torch.zeros(num_classes, dtype=torch.float64)
    for mask in masks:
        labelled = mask[mask != ignore_index]
        counts = torch.bincount(labelled.reshape(-1), minlength=num_classes)[:num_classes].double()
        class_pixels += counts
        image_pixels += (counts > 0).double() * mask.numel()
    return class_pixels, image_pixels


def median_frequency_weights(class_pixels: Tensor, image_pixels: Tensor) -> Tensor:
    """Median-frequency balancing (Eigen and Fergus, https://arxiv.org/abs/1411.4734), as used by
    SegNet on CamVid.

    ``freq[c] = class_pixels[c] / image_pixels[c]`` where ``image_pixels[c]`` is the total pixel
    count of the images in which class ``c`` appears; ``weight[c] = median(freq) / freq[c]``.
    Classes that never appear get weight 0.

    Args:
        class_pixels: ``(C,)`` labelled pixels of each class over the dataset.
        image_pixels: ``(C,)`` pixels of the images that contain each class.

    Returns:
        ``(C,)`` float32 weights.
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

"""Paired transforms on ``(image uint8 (B, H, W), mask int64 (H, W))`` that keep both aligned
(``B`` bands: 3 for RGB, any number for multi-band ``.npy`` images; colour jitter needs RGB).

Geometry is applied to both (masks always with nearest-neighbour, padding with
``ignore_index``); photometric changes touch the image only. :class:`Normalize` turns the uint8
image into a normalised float tensor and comes last.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from semseg.constants import IGNORE_INDEX
from semseg.errors import DataError, InvalidOptionError

Pair = tuple[Tensor, Tensor]


class Compose:
    """Apply paired transforms in order."""

    def __init__(self, transforms: Sequence[object]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        for t in self.transforms:
            image, mask = t(image, mask)  # type: ignore[operator]
        return image, mask


def resize_pair(image: Tensor, mask: Tensor, size: tuple[int, int]) -> Pair:
    """Resize to ``size = (H, W)``: bilinear (antialiased when shrinking) image, nearest mask."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image, mask
    img = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)
    img = img[0].round().clamp(0, 255).to(image.dtype)
    msk = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0].to(mask.dtype)
    return img, msk


class RandomScale:
    """Resize by a factor drawn uniformly from ``scale_range`` (e.g. 0.5-2.0 in DeepLab)."""

    def __init__(self, scale_range: tuple[float, float] = (0.5, 2.0)) -> None:
        lo, hi = scale_range
        if not 0 < lo <= hi:
            raise InvalidOptionError(f"scale range must satisfy 0 < low <= high, got {scale_range}")
        self.lo, self.hi = lo, hi

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        s = random.uniform(self.lo, self.hi)
        h, w = image.shape[-2:]
        return resize_pair(image, mask, (max(1, round(h * s)), max(1, round(w * s))))


class RandomCrop:
    """Crop ``size = (H, W)``; pads first where the image is smaller (image with 0, mask with
    ``ignore_index`` so the padding never counts as a class)."""

    def __init__(self, size: tuple[int, int], ignore_index: int = IGNORE_INDEX) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.ignore_index = ignore_index

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        ch, cw = self.size
        h, w = image.shape[-2:]
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        if ph or pw:
            image = F.pad(image, (0, pw, 0, ph), value=0)
            mask = F.pad(mask, (0, pw, 0, ph), value=self.ignore_index)
            h, w = image.shape[-2:]
        top, left = random.randint(0, h - ch), random.randint(0, w - cw)
        return image[:, top : top + ch, left : left + cw], mask[top : top + ch, left : left + cw]


class RandomHorizontalFlip:
    """Mirror image and mask left-right together with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        if random.random() < self.p:
            return image.flip(-1), mask.flip(-1)
        return image, mask


class ColorJitter:
    """Random brightness, contrast and saturation factors in ``[1 - s, 1 + s]``; image only.

    RGB only: a multi-band image (``B != 3``) raises :class:`~semseg.errors.DataError` (what a
    saturation change means for other bands is not defined; set ``data.jitter: 0``).
    """

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2) -> None:
        self.b, self.c, self.s = brightness, contrast, saturation

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        if image.shape[0] != 3:
            raise DataError(
                f"data.jitter works on 3-band RGB images, not {image.shape[0]}-band ones; set data.jitter: 0"
            )
        img = image.float()
        if self.b:
            img = img * random.uniform(1 - self.b, 1 + self.b)
        if self.c:
            mean = img.mean()
            img = (img - mean) * random.uniform(1 - self.c, 1 + self.c) + mean
        if self.s:
            gray = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
            img = (img - gray) * random.uniform(1 - self.s, 1 + self.s) + gray
        return img.round().clamp(0, 255).to(torch.uint8), mask


class Normalize:
    """uint8 -> float in [0, 1] -> ``(x - mean) / std`` per channel (one value per band)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        return (image.float() / 255.0 - self.mean) / self.std, mask


def normalize_batch(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Normalise a uint8 ``(N, B, H, W)`` batch (on any device) with ``B`` means and stds.

    Raises:
        DataError: the images do not have one band per mean value (``model.in_channels`` differs
            from the images' bands).
    """
    if images.dim() != 4 or images.shape[1] != len(mean) or len(mean) != len(std):
        bands = images.shape[1] if images.dim() == 4 else tuple(images.shape)
        raise DataError(
            f"the model takes {len(mean)}-band images (model.in_channels={len(mean)}, data.mean/std) "
            f"but the images have {bands} bands"
        )
    m = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255.0 - m) / s


def train_transform(
    crop_size: tuple[int, int],
    scale_range: tuple[float, float] = (0.5, 2.0),
    flip: bool = True,
    jitter: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
) -> Compose:
    """The usual training pipeline on uint8 pairs: random scale, crop (ignore padding), flip,
    optional photometric jitter. Normalisation is left to the training loop (on the batch)."""
    steps: list[object] = [RandomScale(scale_range), RandomCrop(crop_size, ignore_index)]
    if flip:
        steps.append(RandomHorizontalFlip())
    if jitter > 0:
        steps.append(ColorJitter(jitter, jitter, jitter))
    return Compose(steps)


def crop_to_multiple(size: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is ``>= size``."""
    return int(math.ceil(size / multiple) * multiple)

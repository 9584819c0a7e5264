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
    """Resize to ``size = (H, W)``: bilinear (antialiased when shrinking) image, nearest mask.

    uint8 images are resized as uint8 (PyTorch's vectorised uint8 kernel, channels-last: about
    5x faster than through float at CamVid sizes; values within 1 of the float path's rounding)
    for scale factors down to 1/8.
    The mask is gathered with the row and column indices of ``nearest-exact`` interpolation, in
    its own dtype: the same labels as interpolating it, without two float copies.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image, mask
    size = (int(size[0]), int(size[1]))
    h, w = mask.shape[-2:]
    # The uint8 kernel's fixed-point weights drift when shrinking 16x or more (measured up to 51
    # off, within 1 down to 1/8): beyond 8x the float path serves (no augmentation goes there).
    if image.dtype == torch.uint8 and 8 * size[0] >= h and 8 * size[1] >= w:
        x = image[None].contiguous(memory_format=torch.channels_last)
        img = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)[0].contiguous()
    else:
        img = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)
        img = img[0].round().clamp(0, 255).to(image.dtype)
    msk = mask.index_select(0, _nearest_index(h, size[0])).index_select(1, _nearest_index(w, size[1]))
    return img, msk


def _nearest_index(n_in: int, n_out: int) -> Tensor:
    """Source index of every output position of ``nearest-exact`` resizing (PyTorch's own
    formula, by resizing the positions themselves: exact below 2**24 pixels per side)."""
    positions = torch.arange(n_in, dtype=torch.float32).view(1, 1, n_in)
    return F.interpolate(positions, size=n_out, mode="nearest-exact")[0, 0].long()


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
        # The same draws as padding first (bottom/right) and cropping the padded pair; only the
        # crop window is allocated and filled.
        top, left = random.randint(0, max(h, ch) - ch), random.randint(0, max(w, cw) - cw)
        if h >= ch and w >= cw:
            return image[:, top : top + ch, left : left + cw], mask[top : top + ch, left : left + cw]
        hh, ww = min(h - top, ch), min(w - left, cw)
        out_image = image.new_zeros(image.shape[0], ch, cw)
        out_mask = mask.new_full((ch, cw), self.ignore_index)
        out_image[:, :hh, :ww] = image[:, top : top + hh, left : left + ww]
        out_mask[:hh, :ww] = mask[top : top + hh, left : left + ww]
        return out_image, out_mask


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

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


def _source_span(n_in: int, n_out: int, start: int, length: int) -> tuple[int, int, int]:
    """For output positions ``start .. start + length - 1`` of resizing ``n_in`` pixels to
    ``n_out`` (bilinear, ``align_corners=False``, antialiased when shrinking): the source span
    ``[lo, hi)`` their kernels read, with a margin, and the index ``j0`` of position ``start`` in
    the output grid of resizing that span alone at the same scale.

    The span's grid lands on the full image's where ``lo * n_out / n_in`` is a whole number;
    ``lo`` is the one among the :data:`_SPAN_SEARCH` + 1 candidates below the kernels' reach
    whose grid is closest (exact whenever ``n_in / gcd(n_in, n_out)`` is within the search), or 0
    (exact) when that one is off by more than :data:`_MAX_OFF_GRID`."""
    r = n_in / n_out  # source pixels per output pixel
    reach = max(r, 1.0) + 1.0  # the kernel's half-width (r source pixels when shrinking) + 1
    first = max(0, math.floor((start + 0.5) * r - 0.5 - reach))
    hi = min(n_in, math.ceil((start + length - 0.5) * r - 0.5 + reach) + 1)

    def off_grid(lo: int) -> float:  # distance of the span's grid from the image's, in output pixels
        q = lo * n_out % n_in
        return min(q, n_in - q) / n_in

    lo = min(range(first, max(-1, first - _SPAN_SEARCH - 1), -1), key=off_grid)  # the first best: largest lo
    if off_grid(lo) > _MAX_OFF_GRID:  # scales near 1 (e.g. 360 -> 365): start at the edge, exact
        lo = 0
    return lo, hi, round(start - lo * n_out / n_in)


_MAX_OFF_GRID = 1 / 64
"""The largest offset (output pixels) :func:`_source_span` accepts between a span's grid and the
full image's; beyond it the span starts at the image's edge (grid exact, a few more rows)."""


_SPAN_SEARCH = 32
"""How many source pixels :func:`_source_span` may move a span's start up to put its sampling
grid on the full image's (a few extra rows resized against an exact image)."""


def resize_window(image: Tensor, size: tuple[int, int], window: tuple[int, int, int, int]) -> Tensor:
    """``resize_pair``'s image resized to ``size = (H, W)`` and cut to ``window = (top, left,
    height, width)``, computed from the source pixels that window needs only.

    Bilinear, antialiased when shrinking, uint8 in and out as :func:`resize_pair`, at the same
    scale per axis (``H / h``, ``W / w``), on the full resize's sampling grid or a small fraction
    of an output pixel off it (see :func:`_source_span`). For scale 2 on CamVid a 288x288 crop reads about a fifth of the image
    instead of resizing all of it to 960x720.

    Args:
        image: ``(B, h, w)``, any strides (a channels-last view is resized without a copy).
        size: the full resized ``(H, W)``.
        window: rows ``top .. top + height - 1`` and columns ``left .. left + width - 1`` of it.

    Returns:
        ``(B, height, width)``, contiguous.
    """
    top, left, height, width = window
    h, w = image.shape[-2:]
    out_h, out_w = int(size[0]), int(size[1])
    if (out_h, out_w) == (h, w):
        return image[:, top : top + height, left : left + width].contiguous()
    y0, y1, j0 = _source_span(h, out_h, top, height)
    x0, x1, i0 = _source_span(w, out_w, left, width)
    region = image[None, :, y0:y1, x0:x1]
    uint8 = image.dtype == torch.uint8 and 8 * out_h >= h and 8 * out_w >= w  # resize_pair's limit
    region = region.contiguous(memory_format=torch.channels_last) if uint8 else region.float()
    # The aten op takes the output size and the scale apart (F.interpolate derives one from the
    # other): the span is resized at the full image's scale into just the rows/columns needed.
    out = torch.ops.aten._upsample_bilinear2d_aa(region, [j0 + height, i0 + width], False, out_h / h, out_w / w)
    out = out[0, :, j0:, i0:]
    if not uint8:
        out = out.round().clamp(0, 255).to(image.dtype)
    return out.contiguous()


class RandomScaleCrop:
    """:class:`RandomScale` then :class:`RandomCrop`, fused: the same draws (scale, then top and
    left, from :mod:`random` in that order) and so the same distribution of crops, but only the
    part of the image that lands in the crop is resized (:func:`resize_window`). The mask is
    gathered with exactly the indices the two-step path uses; the image is the two-step path's
    up to the uint8 kernel's rounding, or a small fraction of a pixel of sampling position.

    Why: for scales above 1 the two-step path resizes the whole image and throws most of it
    away (at scale 2 on CamVid, 960x720 resized for a 288x288 crop).
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        scale_range: tuple[float, float] = (0.5, 2.0),
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        self.scale = RandomScale(scale_range)  # checks the range
        self.size = (int(crop_size[0]), int(crop_size[1]))
        self.ignore_index = ignore_index

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        s = random.uniform(self.scale.lo, self.scale.hi)
        h, w = mask.shape[-2:]
        out_h, out_w = max(1, round(h * s)), max(1, round(w * s))
        ch, cw = self.size
        top, left = random.randint(0, max(out_h, ch) - ch), random.randint(0, max(out_w, cw) - cw)
        hh, ww = min(out_h - top, ch), min(out_w - left, cw)
        img = resize_window(image, (out_h, out_w), (top, left, hh, ww))
        rows, cols = _nearest_index(h, out_h)[top : top + hh], _nearest_index(w, out_w)[left : left + ww]
        if mask.is_contiguous():  # one gather of the flat mask: ~1.5x faster than two index_selects
            msk = mask.reshape(-1).take(rows[:, None] * w + cols[None, :])
        else:
            msk = mask.index_select(0, rows).index_select(1, cols)
        if hh == ch and ww == cw:
            return img, msk
        # Smaller than the crop: pad bottom/right, image with 0, mask with ignore_index.
        out_image = img.new_zeros(img.shape[0], ch, cw)
        out_mask = msk.new_full((ch, cw), self.ignore_index)
        out_image[:, :hh, :ww] = img
        out_mask[:hh, :ww] = msk
        return out_image, out_mask


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
    optional photometric jitter. Normalisation is left to the training loop (on the batch).
    Scale and crop run fused (:class:`RandomScaleCrop`): the same draws as the two steps."""
    steps: list[object] = [RandomScaleCrop(crop_size, scale_range, ignore_index)]
    if flip:
        steps.append(RandomHorizontalFlip())
    if jitter > 0:
        steps.append(ColorJitter(jitter, jitter, jitter))
    return Compose(steps)


def crop_to_multiple(size: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is ``>= size``."""
    return int(math.ceil(size / multiple) * multiple)

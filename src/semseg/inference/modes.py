"""How a segmentation model is applied to full images: whole, sliding window, multi-scale + flip.

All functions take normalised float images ``(N, B, H, W)`` (B bands: 3 for RGB; as the model's
``forward``) and return scores at the original size. They do not switch the model to ``eval()`` nor disable
autograd: callers do (``semseg.predict`` and ``semseg eval`` do both).

What is averaged, stated once:

- **slide** averages *logits*: overlapping crops are accumulated and divided by how many crops
  cover each pixel (the mmsegmentation algorithm).
- **multi-scale / flip** averages *softmax probabilities*: for each scale (and its flipped
  copy) the logits are resized back to ``H x W`` (bilinear), turned into probabilities, and the
  probabilities are averaged over the ``len(scales) * (1 + flip)`` passes (DeepLab/PSPNet-style
  testing, e.g. scales ``0.5, 0.75, 1, 1.25, 1.5, 1.75`` + flip).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semseg.errors import DataError, InvalidOptionError, allowed

MODES = ("whole", "slide")
OUTPUTS = ("probs", "labels", "logits")


def infer_whole(model: nn.Module, images: Tensor) -> Tensor:
    """Logits ``(N, C, H, W)`` from one forward pass over the whole images."""
    _check_images(images, model)
    return _forward(model, images)


def infer_slide(
    model: nn.Module,
    images: Tensor,
    crop: Sequence[int] | int,
    stride: Sequence[int] | int | None = None,
    num_classes: int | None = None,
    tile_batch: int = 1,
) -> Tensor:
    """Sliding-window logits ``(N, C, H, W)``: crops of size ``crop`` every ``stride`` pixels.

    The last window in each direction is aligned to the image border, so every pixel is covered.
    Images smaller than the crop are padded (bottom/right, with zeros: the mean colour after
    normalisation) to the crop size and the padding is cut off the result. Overlapping logits are
    summed and divided by their counts.

    Args:
        crop: ``(h, w)`` or one int; positive.
        stride: ``(h, w)`` or one int, positive and at most the crop (larger strides would skip
            pixels); default two thirds of the crop.
        num_classes: expected ``C``; checked against the model output when given.
        tile_batch: windows per forward pass (stacked along the batch); 1 runs one at a time.
            The logits are the same up to float rounding (eval-mode models treat each image of
            a batch alike); more windows per pass use more memory and pay off mostly on GPUs.
    """
    _check_images(images, model)
    ch, cw = _pair(crop, "crop")
    sh, sw = _pair(stride, "stride") if stride is not None else (max(1, 2 * ch // 3), max(1, 2 * cw // 3))
    if sh > ch or sw > cw:
        raise InvalidOptionError(f"stride {sh}x{sw} is larger than crop {ch}x{cw}; pixels would be skipped")
    n, _, h, w = images.shape
    padded = F.pad(images, (0, max(cw - w, 0), 0, max(ch - h, 0)))
    ph, pw = padded.shape[-2:]
    logits: Tensor | None = None
    counts = images.new_zeros(1, 1, ph, pw)
    if isinstance(tile_batch, bool) or not isinstance(tile_batch, int) or tile_batch < 1:
        raise InvalidOptionError(f"tile_batch={tile_batch!r}; expected a positive integer")
    windows = [(y, x) for y in _starts(ph, ch, sh) for x in _starts(pw, cw, sw)]
    for first in range(0, len(windows), tile_batch):
        group = windows[first : first + tile_batch]
        crops = [padded[:, :, y : y + ch, x : x + cw] for y, x in group]
        outs = _forward(model, crops[0] if len(crops) == 1 else torch.cat(crops)).split(n)
        for (y, x), out in zip(group, outs, strict=True):
            if logits is None:
                if num_classes is not None and out.shape[1] != num_classes:
                    raise DataError(f"model returned {out.shape[1]} classes; num_classes={num_classes}")
                logits = out.new_zeros(n, out.shape[1], ph, pw)
            logits[:, :, y : y + ch, x : x + cw] += out
            counts[:, :, y : y + ch, x : x + cw] += 1
    assert logits is not None  # at least one window
    return (logits / counts)[:, :, :h, :w]


def infer_multiscale(
    model: nn.Module,
    images: Tensor,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    mode: str = "whole",
    crop: Sequence[int] | int | None = None,
    stride: Sequence[int] | int | None = None,
) -> Tensor:
    """Probabilities ``(N, C, H, W)`` averaged over scales and (optionally) horizontal flips.

    Each scaled image (bilinear, ``round(H * s) x round(W * s)``) goes through :func:`infer_whole`
    or :func:`infer_slide` (``mode``; ``crop``/``stride`` in pixels of the *scaled* image), the
    logits are resized to ``H x W`` and softmaxed (a binary model's one channel: sigmoid), and the
    probabilities are averaged.
    """
    _check_images(images, model)
    _check_mode(mode, crop)
    if not scales or any(not (float(s) > 0) for s in scales):
        raise InvalidOptionError(f"scales must be positive numbers, got {list(scales)}")
    h, w = images.shape[-2:]
    total: Tensor | None = None
    passes = 0
    for scale in scales:
        size = (max(1, round(h * float(scale))), max(1, round(w * float(scale))))
        x = images if size == (h, w) else F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        for flipped in (False, True) if flip else (False,):
            xi = x.flip(-1) if flipped else x
            logits = infer_whole(model, xi) if mode == "whole" else infer_slide(model, xi, crop, stride)  # type: ignore[arg-type]
            if flipped:
                logits = logits.flip(-1)
            if logits.shape[-2:] != (h, w):
                logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            probs = to_probs(logits)
            total = probs if total is None else total + probs
            passes += 1
    assert total is not None
    return total / passes


def inference(
    model: nn.Module,
    images: Tensor,
    mode: str = "whole",
    crop: Sequence[int] | int | None = None,
    stride: Sequence[int] | int | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    output: str = "probs",
) -> Tensor:
    """Scores at the original size with any combination of the modes.

    Args:
        model: a segmentation model returning logits ``(N, C, h, w)`` (put it in ``eval()`` first).
        images: normalised float ``(N, 3, H, W)``.
        mode: ``whole`` or ``slide`` (then ``crop`` is required, ``stride`` optional).
        scales, flip: multi-scale factors and horizontal flip; probabilities are averaged.
        output: ``probs`` ``(N, C, H, W)`` float, ``labels`` ``(N, H, W)`` int64, or ``logits``
            (plain whole/slide only: averaged probabilities have no single set of logits).
    """
    _check_mode(mode, crop)
    if output not in OUTPUTS:
        raise InvalidOptionError(f"output={output!r}; allowed: {allowed(OUTPUTS)}")
    plain = tuple(float(s) for s in scales) == (1.0,) and not flip
    if output == "logits" and not plain:
        raise InvalidOptionError("output='logits' needs scales=(1.0,) and flip=False; use output='probs'")
    if plain:
        logits = infer_whole(model, images) if mode == "whole" else infer_slide(model, images, crop, stride)  # type: ignore[arg-type]
        if output == "logits":
            return logits
        return to_labels(logits, 0.0) if output == "labels" else to_probs(logits)
    probs = infer_multiscale(model, images, scales, flip, mode, crop, stride)
    return to_labels(probs, 0.5) if output == "labels" else probs


def to_probs(logits: Tensor) -> Tensor:
    """Probabilities of logits ``(N, C, H, W)``: softmax over ``C``, or the sigmoid of a binary
    model's one channel (the foreground probability, ``(N, 1, H, W)``)."""
    return logits.float().sigmoid() if logits.shape[1] == 1 else logits.float().softmax(1)


def to_labels(scores: Tensor, threshold: float) -> Tensor:
    """Labels ``(N, H, W)`` int64: the argmax over ``C``, or for one channel ``scores > threshold``
    (0 for logits, 0.5 for probabilities) as 0/1."""
    if scores.shape[1] == 1:
        return (scores[:, 0] > threshold).long()
    return scores.argmax(1)


def _forward(model: nn.Module, images: Tensor) -> Tensor:
    out = model(images)
    logits = out[0] if isinstance(out, tuple) else out  # a SegmentationOutput
    if logits.dim() != 4 or logits.shape[0] != images.shape[0]:
        raise DataError(f"model returned shape {tuple(logits.shape)}; expected (N, C, h, w)")
    if logits.shape[-2:] != images.shape[-2:]:
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return logits


def _starts(size: int, crop: int, stride: int) -> list[int]:
    """Window origins along one axis: every ``stride``, the last one flush with the border."""
    count = max(size - crop + stride - 1, 0) // stride + 1
    return [min(i * stride, size - crop) for i in range(count)]


def _pair(value: Sequence[int] | int, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) == 1:
        pair = (pair[0], pair[0])
    if len(pair) != 2 or any(isinstance(v, bool) or int(v) != v or v < 1 for v in pair):
        raise InvalidOptionError(f"{name}={value!r}; expected one or two positive integers (H, W)")
    return int(pair[0]), int(pair[1])


def _check_mode(mode: str, crop: Sequence[int] | int | None) -> None:
    if mode not in MODES:
        raise InvalidOptionError(f"mode={mode!r}; allowed: {allowed(MODES)}")
    if mode == "slide" and crop is None:
        raise InvalidOptionError("mode='slide' needs crop=(h, w) (and optionally stride)")


def _check_images(images: Tensor, model: nn.Module) -> None:
    if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise DataError(f"inference expects normalised float images (N, 3, H, W); got {shape}")
    bands = input_bands(model)
    if bands is not None and images.shape[1] != bands:
        raise DataError(f"inference expects {bands}-channel images (N, {bands}, H, W); got {tuple(images.shape)}")


def input_bands(model: nn.Module) -> int | None:
    """The input bands ``model`` reads: the ``in_channels`` of its first ``Conv2d`` (``None``
    without one)."""
    inner = getattr(model, "module", model)
    for module in inner.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    return None

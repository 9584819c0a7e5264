"""Pixel-wise losses of the cross-entropy family: plain (with label smoothing), OHEM and focal.

Segmentation is per-pixel classification: with logits ``(N, C, H, W)`` every labelled pixel of
every image is one sample, so a mini-batch holds ``N * H * W`` samples (minus ignored pixels).
Every loss here takes ``target`` ``(N, H, W)`` int64 class ids, leaves out the pixels equal to
``ignore_index``, returns a scalar, and returns 0 (with a gradient path) when every pixel is
ignored. Class weights ``(C,)`` give a weighted mean, as ``torch.nn.functional.cross_entropy``:
``sum_i w[y_i] * l_i / sum_i w[y_i]`` over the pixels averaged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from semseg.constants import IGNORE_INDEX
from semseg.errors import DataError, InvalidOptionError


def check_shapes(logits: Tensor, target: Tensor) -> None:
    """Raise :class:`DataError` unless ``logits (N, C, H, W)`` and ``target (N, H, W)`` agree."""
    if logits.dim() != 4 or target.dim() != 3:
        raise DataError(
            f"expected logits (N, C, H, W) and target (N, H, W), got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise DataError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} disagree on N, H, W")


def check_option(ok: bool, name: str, value: object, expected: str) -> None:
    """Raise :class:`InvalidOptionError` ``name=value; expected ...`` unless ``ok``."""
    if not ok:
        raise InvalidOptionError(f"{name}={value!r}; expected {expected}")


def is_number(value: object) -> bool:
    """A real, finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_label_smoothing(label_smoothing: float) -> None:
    check_option(
        is_number(label_smoothing) and 0 <= label_smoothing < 1,
        "label_smoothing",
        label_smoothing,
        "a number in [0, 1)",
    )


def check_ohem(thresh: float, min_kept: int) -> None:
    check_option(is_number(thresh) and 0 < thresh <= 1, "thresh", thresh, "a number in (0, 1]")
    check_option(
        isinstance(min_kept, int) and not isinstance(min_kept, bool) and min_kept >= 0,
        "min_kept",
        min_kept,
        "an integer >= 0",
    )


def check_gamma(gamma: float) -> None:
    check_option(is_number(gamma) and gamma >= 0, "gamma", gamma, "a number >= 0")


def _zero(logits: Tensor) -> Tensor:
    """0 with a gradient path to ``logits`` (every pixel ignored)."""
    return logits.sum() * 0.0


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Mean cross-entropy over labelled pixels, optionally with label smoothing.

    ``CE = mean_i -log p_i[y_i]`` with ``p_i = softmax(logits_i)``. Label smoothing
    (Szegedy et al. 2016, https://arxiv.org/abs/1512.00567) with ``eps = label_smoothing`` trains
    against ``(1 - eps) * onehot(y) + eps / C``, exactly as ``torch.nn.functional.cross_entropy``
    defines it: ``(1 - eps) * CE + eps / C * sum_i sum_c w[c] * -log p_i[c] / sum_i w[y_i]``
    (``w = 1`` without class weights).

    Args:
        logits: ``(N, C, H, W)`` unnormalised scores.
        target: ``(N, H, W)`` int64 class ids, ``ignore_index`` for pixels left out.
        weight: optional ``(C,)`` class weights; the mean is then weighted (sum of ``w[y] * nll``
            over sum of ``w[y]``).
        ignore_index: target value of pixels left out.
        label_smoothing: ``eps`` in ``[0, 1)``; 0 is plain cross-entropy.

    Returns a scalar; 0 (with a gradient path) when every pixel is ignored.
    """
    check_shapes(logits, target)
    check_label_smoothing(label_smoothing)
    if not (target != ignore_index).any():
        return _zero(logits)
    if weight is not None:
        weight = weight.to(logits.dtype)
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)


def ohem_mask(
    logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX, thresh: float = 0.7, min_kept: int = 100_000
) -> Tensor:
    """The pixels online hard example mining keeps: ``(N, C, H, W)``, ``(N, H, W)`` -> bool ``(N, H, W)``.

    A labelled pixel is kept when the softmax probability of its true class is below ``thresh``;
    when fewer than ``min_kept`` pixels (over the whole batch) pass, the ``min_kept`` hardest
    labelled pixels (lowest probability first) are kept instead, or every labelled pixel when the
    batch has fewer. So exactly ``max(#{p < thresh}, min(min_kept, #labelled))`` pixels are kept.
    Ignored pixels are never kept. No gradient flows through the selection.
    """
    check_shapes(logits, target)
    check_ohem(thresh, min_kept)
    with torch.no_grad():
        labelled = target != ignore_index
        safe = target.masked_fill(~labelled, 0).unsqueeze(1)
        prob = torch.softmax(logits.detach(), 1).gather(1, safe).squeeze(1)  # (N, H, W)
        kept = labelled & (prob < thresh)
        quota = min(min_kept, int(labelled.sum()))
        if int(kept.sum()) >= quota:
            return kept
        # Fewer than the quota are below thresh: keep the ``quota`` lowest probabilities (they
        # include every pixel below thresh). Ignored pixels sort last.
        hardest = torch.topk(prob.masked_fill(~labelled, math.inf).flatten(), quota, largest=False).indices
        kept = torch.zeros(target.numel(), dtype=torch.bool, device=target.device)
        kept[hardest] = True
        return kept.view_as(target)


def ohem_cross_entropy(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    thresh: float = 0.7,
    min_kept: int = 100_000,
) -> Tensor:
    """Cross-entropy over the hard pixels only (online hard example mining).

    OHEM (Shrivastava et al. 2016, https://arxiv.org/abs/1604.03540) applied to pixels, as the
    bootstrapped cross-entropy of the PSPNet / DeepLab Cityscapes recipes (mmsegmentation's
    ``OHEMPixelSampler(thresh=0.7, min_kept=100000)``): the pixels of :func:`ohem_mask` (true-class
    probability below ``thresh``, but at least the ``min_kept`` hardest) enter
    ``CE = sum_{i kept} w[y_i] * -log p_i[y_i] / sum_{i kept} w[y_i]``; the others are ignored.

    Two differences from mmsegmentation, both deliberate: ``min_kept`` counts pixels per batch
    (mmsegmentation multiplies it by the batch size), and the quota is exact (mmsegmentation
    compares against the ``min_kept``-th probability and can keep one pixel fewer).

    Args:
        logits: ``(N, C, H, W)`` unnormalised scores.
        target: ``(N, H, W)`` int64 class ids, ``ignore_index`` for pixels left out.
        weight: optional ``(C,)`` class weights (weighted mean over the kept pixels).
        ignore_index: target value of pixels never kept.
        thresh: probability in ``(0, 1]`` below which a pixel is hard.
        min_kept: least number of pixels kept per batch (``>= 0``).

    Returns a scalar; 0 (with a gradient path) when every pixel is ignored.
    """
    kept = ohem_mask(logits, target, ignore_index, thresh, min_kept)
    return cross_entropy(logits, target.masked_fill(~kept, ignore_index), weight, ignore_index)


def focal_loss(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    gamma: float = 2.0,
) -> Tensor:
    """Multi-class focal loss (Lin et al. 2017, https://arxiv.org/abs/1708.02002).

    ``FL_i = -(1 - p_i[y_i]) ** gamma * log p_i[y_i]`` with ``p_i = softmax(logits_i)``, averaged
    over labelled pixels; the class weights play the paper's ``alpha_t``:
    ``FL = sum_i w[y_i] * FL_i / sum_i w[y_i]``. This is the weighted mean of
    :func:`cross_entropy`, so ``gamma=0`` gives exactly the (weighted) cross-entropy.

    Args:
        logits: ``(N, C, H, W)`` unnormalised scores.
        target: ``(N, H, W)`` int64 class ids, ``ignore_index`` for pixels left out.
        weight: optional ``(C,)`` class weights (``alpha``).
        ignore_index: target value of pixels left out.
        gamma: focusing parameter ``>= 0`` (2 in the paper).

    Returns a scalar; 0 (with a gradient path) when every pixel is ignored.
    """
    check_shapes(logits, target)
    check_gamma(gamma)
    labelled = target != ignore_index
    if not labelled.any():
        return _zero(logits)
    labels = target[labelled]  # (P,)
    log_p = F.log_softmax(logits, 1).permute(0, 2, 3, 1)[labelled].gather(1, labels[:, None]).squeeze(1)
    loss = -log_p
    if gamma != 0:
        loss = loss * (-torch.expm1(log_p)).pow(gamma)  # (1 - p) ** gamma, accurate near p = 1
    if weight is None:
        return loss.mean()
    w = weight.to(logits.dtype)[labels]
    return (w * loss).sum() / w.sum()


def check_pos_weight(pos_weight: float | None) -> None:
    check_option(
        pos_weight is None or (is_number(pos_weight) and pos_weight > 0),
        "pos_weight",
        pos_weight,
        "a number > 0 or null",
    )


def binary_cross_entropy(
    logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX, pos_weight: float | None = None
) -> Tensor:
    """Binary cross-entropy on sigmoid logits, the loss of a one-channel (foreground/background) model.

    ``l_i = -(pos_weight * y_i * log(sigmoid(x_i)) + (1 - y_i) * log(1 - sigmoid(x_i)))``, averaged
    over the pixels whose target is not ``ignore_index``; 0 (with a gradient path) when every pixel
    is ignored. ``pos_weight`` (``None``: 1) weighs the foreground pixels, e.g. ``#background /
    #foreground`` for a rare foreground.

    Args:
        logits: ``(N, 1, H, W)`` foreground logits.
        target: ``(N, H, W)`` int64, 0 (background), 1 (foreground) or ``ignore_index``.

    Raises:
        DataError: shapes that disagree, more than one logit channel, or target values other
            than 0, 1 and ``ignore_index``.
    """
    check_shapes(logits, target)
    if logits.shape[1] != 1:
        raise DataError(
            f"bce takes one-channel (binary) logits, got {logits.shape[1]} channels; use ce for multi-class models"
        )
    check_pos_weight(pos_weight)
    valid = target != ignore_index
    if not bool(valid.any()):
        return _zero(logits)
    x = logits[:, 0][valid]
    y = target[valid]
    if bool(((y != 0) & (y != 1)).any()):
        raise DataError(f"binary targets must be 0, 1 or {ignore_index}, got values up to {int(y.max())}")
    weight = None if pos_weight is None else torch.tensor(float(pos_weight), device=x.device, dtype=x.dtype)
    return F.binary_cross_entropy_with_logits(x, y.to(x.dtype), pos_weight=weight)

"""Soft Dice loss: multi-class (softmax) and binary (sigmoid of one logit channel)."""

from __future__ import annotations

import torch
from torch import Tensor

from semseg.constants import IGNORE_INDEX
from semseg.errors import DataError
from semseg.losses.functional import check_option, check_shapes, is_number

CLASS_CHOICES = ("present", "all")
"""Which classes a class-averaged loss (Dice, Lovasz-softmax) averages over."""


def check_classes(classes: str) -> None:
    check_option(classes in CLASS_CHOICES, "classes", classes, " or ".join(CLASS_CHOICES))


def check_smooth(smooth: float) -> None:
    check_option(is_number(smooth) and smooth >= 0, "smooth", smooth, "a number >= 0")


def dice_loss(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = IGNORE_INDEX,
    smooth: float = 1.0,
    classes: str = "present",
) -> Tensor:
    """Soft Dice loss over the batch (Milletari et al. 2016, V-Net, https://arxiv.org/abs/1606.04797).

    Multi-class (``C >= 2``): ``p = softmax(logits)`` against the one-hot target ``t``, with the
    sums over every labelled pixel of the batch (ignored pixels count in neither ``p`` nor ``t``):

        ``Dice_c = (2 * sum_i p_ic t_ic + smooth) / (sum_i p_ic + sum_i t_ic + smooth)``
        ``loss = mean_c (1 - Dice_c)``

    the mean taken over the classes present in the batch's labelled target (``classes="present"``,
    the default) or over all ``C`` classes (``classes="all"``; an absent class then scores
    ``1 - smooth / (sum_i p_ic + smooth)``, which pushes its probabilities towards 0).

    Binary (``C == 1``): ``p = sigmoid(logits)`` against the target in ``{0, 1}``; the loss is
    ``1 - Dice`` of the foreground (class 1) alone, and ``classes`` has no effect.

    Class weights do not apply: the mean over classes already weighs every class equally, however
    few its pixels.

    Args:
        logits: ``(N, C, H, W)`` unnormalised scores, or ``(N, 1, H, W)`` binary logits.
        target: ``(N, H, W)`` int64 class ids (0 or 1 when binary), ``ignore_index`` for pixels
            left out.
        ignore_index: target value of pixels left out.
        smooth: ``>= 0``, added to numerator and denominator (1 by default; with 0 an absent class
            under ``classes="all"`` can divide 0 by 0).
        classes: ``"present"`` or ``"all"``.

    Returns a scalar; 0 (with a gradient path) when every pixel is ignored.
    """
    check_shapes(logits, target)
    check_smooth(smooth)
    check_classes(classes)
    labelled = target != ignore_index
    if not labelled.any():
        return logits.sum() * 0.0
    mask = labelled.unsqueeze(1).to(logits.dtype)  # (N, 1, H, W)
    safe = target.masked_fill(~labelled, 0).unsqueeze(1)  # (N, 1, H, W)
    if logits.shape[1] == 1:
        if int(safe.max()) > 1 or int(safe.min()) < 0:
            raise DataError(f"binary dice_loss expects targets 0, 1 or ignore_index={ignore_index}")
        prob, onehot = torch.sigmoid(logits), safe.to(logits.dtype)
    else:
        prob = torch.softmax(logits, 1)
        onehot = torch.zeros_like(prob).scatter_(1, safe, 1.0)
    prob, onehot = prob * mask, onehot * mask
    dims = (0, 2, 3)
    intersection = (prob * onehot).sum(dims)  # (C,)
    support = onehot.sum(dims)  # (C,)
    dice = (2 * intersection + smooth) / (prob.sum(dims) + support + smooth)
    loss = 1 - dice  # (C,)
    if logits.shape[1] == 1:
        return loss[0]
    if classes == "present":
        return loss[support > 0].mean()  # never empty: some pixel is labelled
    return loss.mean()

"""Thin ``nn.Module`` wrappers of the pixel losses: options checked once, class weights held as a
buffer (so ``.to(device)`` moves them).

Every module is a :class:`PixelLoss`: it maps ``logits (N, C, H, W)`` and ``target (N, H, W)``
int64 to a scalar. ``options`` names the keyword options a ``train.loss`` term may set;
``takes_class_weights`` says whether the configured class weights (``train.class_weights``) are
passed to it.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from semseg.constants import IGNORE_INDEX
from semseg.losses.dice import check_classes, check_smooth, dice_loss
from semseg.losses.functional import (
    binary_cross_entropy,
    check_gamma,
    check_label_smoothing,
    check_ohem,
    check_option,
    check_pos_weight,
    cross_entropy,
    focal_loss,
    ohem_cross_entropy,
)
from semseg.losses.lovasz import check_max_pixels, lovasz_hinge, lovasz_softmax


class PixelLoss(nn.Module):
    """Base of the pixel-loss modules: ``forward(logits (N, C, H, W), target (N, H, W)) -> scalar``.

    ``options``: the keyword options a ``train.loss`` term may set; ``takes_class_weights``:
    whether the constructor takes ``weight`` (the configured class weights); ``channels``:
    ``"multi"`` (needs ``C >= 2``: softmax losses), ``"binary"`` (needs ``C == 1``) or ``"any"``.
    """

    options: ClassVar[tuple[str, ...]] = ()
    takes_class_weights: ClassVar[bool] = False
    channels: ClassVar[str] = "multi"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError


class _WeightedLoss(PixelLoss):
    """Holds the optional ``(C,)`` class weights as a float32 buffer."""

    weight: Tensor | None
    takes_class_weights: ClassVar[bool] = True

    def __init__(self, weight: Tensor | None, ignore_index: int) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("weight", None if weight is None else weight.detach().float().clone())


class CrossEntropyLoss(_WeightedLoss):
    """:func:`~semseg.losses.functional.cross_entropy` (weights, ignore label, label smoothing).

    Shape: ``(N, C, H, W)``, ``(N, H, W)`` -> scalar.
    """

    options: ClassVar[tuple[str, ...]] = ("label_smoothing",)

    def __init__(
        self, weight: Tensor | None = None, ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0
    ) -> None:
        check_label_smoothing(label_smoothing)
        super().__init__(weight, ignore_index)
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(logits, target, self.weight, self.ignore_index, self.label_smoothing)


class OhemCrossEntropyLoss(_WeightedLoss):
    """:func:`~semseg.losses.functional.ohem_cross_entropy`: cross-entropy over the pixels whose
    true-class probability is below ``thresh``, at least the ``min_kept`` hardest per batch.

    Shape: ``(N, C, H, W)``, ``(N, H, W)`` -> scalar.
    """

    options: ClassVar[tuple[str, ...]] = ("thresh", "min_kept")

    def __init__(
        self,
        weight: Tensor | None = None,
        ignore_index: int = IGNORE_INDEX,
        thresh: float = 0.7,
        min_kept: int = 100_000,
    ) -> None:
        check_ohem(thresh, min_kept)
        super().__init__(weight, ignore_index)
        self.thresh, self.min_kept = thresh, min_kept

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return ohem_cross_entropy(logits, target, self.weight, self.ignore_index, self.thresh, self.min_kept)


class FocalLoss(_WeightedLoss):
    """:func:`~semseg.losses.functional.focal_loss` with focusing parameter ``gamma``; the class
    weights play ``alpha``.

    Shape: ``(N, C, H, W)``, ``(N, H, W)`` -> scalar.
    """

    options: ClassVar[tuple[str, ...]] = ("gamma",)

    def __init__(self, weight: Tensor | None = None, ignore_index: int = IGNORE_INDEX, gamma: float = 2.0) -> None:
        check_gamma(gamma)
        super().__init__(weight, ignore_index)
        self.gamma = gamma

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return focal_loss(logits, target, self.weight, self.ignore_index, self.gamma)


class BCELoss(PixelLoss):
    """:func:`~semseg.losses.functional.binary_cross_entropy` for one-channel (binary) logits, with
    the optional ``pos_weight`` of the foreground. The default loss of binary models.

    Shape: ``(N, 1, H, W)``, ``(N, H, W)`` (0, 1 or ignore) -> scalar.
    """

    options: ClassVar[tuple[str, ...]] = ("pos_weight",)
    channels: ClassVar[str] = "binary"

    def __init__(self, ignore_index: int = IGNORE_INDEX, pos_weight: float | None = None) -> None:
        check_pos_weight(pos_weight)
        super().__init__()
        self.ignore_index, self.pos_weight = ignore_index, pos_weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy(logits, target, self.ignore_index, self.pos_weight)


class DiceLoss(PixelLoss):
    """:func:`~semseg.losses.dice.dice_loss`: soft multi-class Dice (softmax), or binary Dice
    (sigmoid) for ``(N, 1, H, W)`` logits. No class weights (the class mean balances classes).

    Shape: ``(N, C, H, W)``, ``(N, H, W)`` -> scalar.
    """

    options: ClassVar[tuple[str, ...]] = ("smooth", "classes")
    channels: ClassVar[str] = "any"

    def __init__(self, ignore_index: int = IGNORE_INDEX, smooth: float = 1.0, classes: str = "present") -> None:
        check_smooth(smooth)
        check_classes(classes)
        super().__init__()
        self.ignore_index, self.smooth, self.classes = ignore_index, smooth, classes

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return dice_loss(logits, target, self.ignore_index, self.smooth, self.classes)


class LovaszLoss(PixelLoss):
    """:func:`~semseg.losses.lovasz.lovasz_softmax` for ``C >= 2`` logits, and
    :func:`~semseg.losses.lovasz.lovasz_hinge` for binary ``(N, 1, H, W)`` logits (``classes``
    then has no effect). No class weights (the class mean balances classes). ``max_pixels``
    sorts a uniform sample of at most that many labelled pixels per problem (the exact loss when
    ``None``).

    Shape: ``(N, C, H, W)``, ``(N, H, W)`` -> scalar.
    """

    options: ClassVar[tuple[str, ...]] = ("classes", "per_image", "max_pixels")
    channels: ClassVar[str] = "any"

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        classes: str = "present",
        per_image: bool = False,
        max_pixels: int | None = None,
    ) -> None:
        check_classes(classes)
        check_option(isinstance(per_image, bool), "per_image", per_image, "true or false")
        check_max_pixels(max_pixels)
        super().__init__()
        self.ignore_index, self.classes, self.per_image, self.max_pixels = ignore_index, classes, per_image, max_pixels

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if logits.dim() == 4 and logits.shape[1] == 1:
            return lovasz_hinge(logits, target, self.ignore_index, self.per_image, self.max_pixels)
        return lovasz_softmax(logits, target, self.ignore_index, self.classes, self.per_image, self.max_pixels)

"""Losses: pixel-wise cross-entropy (with label smoothing), binary cross-entropy, OHEM, focal, Dice and Lovasz losses,
their weighted sum from the config, and the criterion summing main, auxiliary and SE terms.

Every pixel loss is a plain function (``functional``, ``dice``, ``lovasz``) and a thin
``nn.Module`` (``modules``); all take logits ``(N, C, H, W)`` and a target ``(N, H, W)`` with
``ignore_index`` for pixels left out. See docs/losses.md.

Class statistics and median-frequency weights are properties of a dataset's masks and live in
:mod:`semseg.data.statistics`.
"""

from semseg.losses.combined import (
    BINARY_DEFAULT_LOSS,
    BINARY_LOSSES,
    DEFAULT_LOSS,
    LOSSES,
    CombinedLoss,
    build_pixel_loss,
)
from semseg.losses.dice import dice_loss
from semseg.losses.functional import binary_cross_entropy, cross_entropy, focal_loss, ohem_cross_entropy, ohem_mask
from semseg.losses.lovasz import lovasz_hinge, lovasz_jaccard_gradient, lovasz_softmax
from semseg.losses.modules import (
    BCELoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    LovaszLoss,
    OhemCrossEntropyLoss,
    PixelLoss,
)

__all__ = [
    "BINARY_DEFAULT_LOSS",
    "BINARY_LOSSES",
    "DEFAULT_LOSS",
    "LOSSES",
    "BCELoss",
    "CombinedLoss",
    "CrossEntropyLoss",
    "DiceLoss",
    "FocalLoss",
    "LovaszLoss",
    "OhemCrossEntropyLoss",
    "PixelLoss",
    "binary_cross_entropy",
    "build_pixel_loss",
    "cross_entropy",
    "dice_loss",
    "focal_loss",
    "lovasz_hinge",
    "lovasz_jaccard_gradient",
    "lovasz_softmax",
    "ohem_cross_entropy",
    "ohem_mask",
]

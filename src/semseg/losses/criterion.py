"""The training criterion: main + auxiliary + Semantic Encoding terms.

``total = L(logits) + aux_weight * sum L(dense aux logits) + se_weight * sum BCE(SE logits)``

* ``L`` is the pixel loss of ``train.loss`` (:func:`~semseg.losses.combined.build_pixel_loss`): a
  weighted sum of cross-entropy, OHEM, focal, Dice and Lovasz terms; plain cross-entropy by default;
* dense auxiliary outputs ``(N, C, H, W)`` (the FCN head on stage 3, PSPNet's deep supervision,
  https://arxiv.org/abs/1612.01105, weight 0.4) get the same pixel loss as the main logits, with
  the same class weights and ignore label;
* image-level outputs ``(N, C)`` (EncNet's SE logits, https://arxiv.org/abs/1803.08904, weight 0.2)
  get binary cross-entropy against :func:`se_target`, which class ids occur in each mask.

Every term is reported by name for logging, e.g.
``{"main": 1.02, "aux": 1.31, "se": 0.69, "loss": 1.68}``; with more than one pixel loss, each
output's parts too: ``{"main": 1.3, "main.ce": 1.0, "main.lovasz": 0.6, "aux": ..., ...}``
(unweighted values; ``main`` is their weighted sum).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semseg.constants import IGNORE_INDEX
from semseg.errors import DataError, InvalidOptionError
from semseg.losses.combined import DEFAULT_LOSS, build_pixel_loss, default_loss


def se_target(mask: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Class-presence vectors of a batch of masks: ``out[n, c] = 1`` iff class ``c`` occurs in
    ``mask[n]`` (pixels equal to ``ignore_index`` are not counted).

    Example: ``mask = [[[0, 2], [255, 2]]]`` with 4 classes -> ``[[1., 0., 1., 0.]]``.

    Shape: ``(N, H, W)`` int -> ``(N, num_classes)`` float32.
    """
    if mask.dim() != 3:
        raise DataError(f"se_target expects masks of shape (N, H, W), got {tuple(mask.shape)}")
    n = mask.shape[0]
    flat = mask.reshape(n, -1).long()
    labelled = flat != ignore_index
    if labelled.any():
        bad = flat[labelled]
        if int(bad.min()) < 0 or int(bad.max()) >= num_classes:
            raise DataError(
                f"mask holds class ids outside 0..{num_classes - 1} (other than ignore_index={ignore_index}): "
                f"min {int(bad.min())}, max {int(bad.max())}"
            )
    # One bincount over (image, class) pairs: image n's class c lands in bin n * C + c.
    rows = torch.arange(n, device=mask.device).unsqueeze(1).expand_as(flat)
    bins = (rows * num_classes + flat)[labelled]
    counts = torch.bincount(bins, minlength=n * num_classes)
    return (counts.view(n, num_classes) > 0).float()


class SegmentationCriterion(nn.Module):
    """Sum of the main, auxiliary and SE losses, with each term reported.

    Args:
        num_classes: classes of the logits (sets the length of the SE target).
        ignore_index: label of pixels left out of every term.
        class_weights: optional ``(C,)`` weights for the pixel-loss terms that take them
            (ce, ohem, focal).
        aux_weight: weight of each dense auxiliary term (0.4, PSPNet).
        se_weight: weight of each SE term (0.2, EncNet).
        loss: the pixel loss terms, as ``train.loss``
            (``[{"name": "ce", "weight": 1.0}, {"name": "lovasz", "weight": 0.5}]``); ``None``:
            plain cross-entropy. For ``num_classes=1`` (a binary, sigmoid model) ``None`` and the
            default ``[{name: ce, weight: 1.0}]`` mean binary cross-entropy (``bce``); the softmax
            losses (ce, ohem, focal) are refused.

    Shape:
        ``logits``: ``(N, C, H, W)``; ``target``: ``(N, H, W)`` int64; ``aux``: named extra outputs
        (a model's ``SegmentationOutput.aux``), each ``(N, C, H, W)`` or ``(N, C)``
        -> ``(scalar loss, {"main", <aux names>..., "loss"} floats)``, plus ``"<output>.<term>"``
        for each pixel-loss term when there are several.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = IGNORE_INDEX,
        class_weights: Tensor | None = None,
        aux_weight: float = 0.4,
        se_weight: float = 0.2,
        loss: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        if class_weights is not None and tuple(class_weights.shape) != (num_classes,):
            raise InvalidOptionError(f"class_weights has shape {tuple(class_weights.shape)}; expected ({num_classes},)")
        if aux_weight < 0 or se_weight < 0:
            raise InvalidOptionError(f"aux_weight={aux_weight} and se_weight={se_weight} must be >= 0")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.aux_weight = aux_weight
        self.se_weight = se_weight
        # A module, so that criterion.to(device) moves the class weights (the terms' buffers) along.
        if num_classes == 1 and (loss is None or _is_default(loss)):
            loss = default_loss(num_classes)
        self.pixel_loss = build_pixel_loss(
            default_loss(num_classes) if loss is None else loss, class_weights, ignore_index, num_classes
        )

    def forward(
        self, logits: Tensor, target: Tensor, aux: Mapping[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        aux = aux or {}
        terms: dict[str, float] = {}
        main = self._pixel_loss(logits, target, "main", terms)
        total = main
        presence: Tensor | None = None
        for name, value in aux.items():
            if value.dim() == 4:
                term = self._pixel_loss(value, target, name, terms)
                total = total + self.aux_weight * term
            elif value.dim() == 2:
                if value.shape[1] != self.num_classes:
                    raise DataError(f"aux output {name!r} has {value.shape[1]} classes; expected {self.num_classes}")
                if presence is None:
                    # A binary model's one SE logit: whether the image has foreground (class 1).
                    presence = (
                        se_target(target, 2, self.ignore_index)[:, 1:]
                        if self.num_classes == 1
                        else se_target(target, self.num_classes, self.ignore_index)
                    )
                term = F.binary_cross_entropy_with_logits(value.float(), presence)
                total = total + self.se_weight * term
                terms[name] = float(term.detach())
            else:
                raise DataError(f"aux output {name!r} has shape {tuple(value.shape)}; expected (N, C, H, W) or (N, C)")
        terms["loss"] = float(total.detach())
        return total, terms

    def _pixel_loss(self, logits: Tensor, target: Tensor, name: str, terms: dict[str, float]) -> Tensor:
        """The pixel loss of one output (in float32), reported as ``terms[name]`` and, with several
        terms, ``terms[f"{name}.{term}"]``."""
        value, parts = self.pixel_loss(logits.float(), target)
        terms[name] = float(value.detach())
        if len(parts) > 1:
            terms.update({f"{name}.{part}": float(v.detach()) for part, v in parts.items()})
        return value


def _is_default(loss: Sequence[Mapping[str, Any]]) -> bool:
    """Whether ``loss`` is the default ``train.loss`` (plain cross-entropy of weight 1)."""
    return [dict(term) for term in loss] == [dict(term) for term in DEFAULT_LOSS]

"""The training criterion of the context networks: main + auxiliary + Semantic Encoding terms.

``total = CE(logits) + aux_weight * sum CE(dense aux logits) + se_weight * sum BCE(SE logits)``

* dense auxiliary outputs ``(N, C, H, W)`` (the FCN head on stage 3, PSPNet's deep supervision,
  https://arxiv.org/abs/1612.01105, weight 0.4) get the same pixel-wise cross-entropy as the main
  logits, with the same class weights and ignore label;
* image-level outputs ``(N, C)`` (EncNet's SE logits, https://arxiv.org/abs/1803.08904, weight 0.2)
  get binary cross-entropy against :func:`se_target`, which class ids occur in each mask.

Every term is reported by name for logging, e.g.
``{"main": 1.02, "aux": 1.31, "se": 0.69, "loss": 1.68}``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semseg.constants import IGNORE_INDEX
from semseg.errors import DataError, InvalidOptionError
from semseg.losses.functional import cross_entropy


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
        class_weights: optional ``(C,)`` weights for the pixel-wise terms.
        aux_weight: weight of each dense auxiliary term (0.4, PSPNet).
        se_weight: weight of each SE term (0.2, EncNet).

    Shape:
        ``logits``: ``(N, C, H, W)``; ``target``: ``(N, H, W)`` int64; ``aux``: named extra outputs
        (a model's ``SegmentationOutput.aux``), each ``(N, C, H, W)`` or ``(N, C)``
        -> ``(scalar loss, {"main", <aux names>..., "loss"} floats)``.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = IGNORE_INDEX,
        class_weights: Tensor | None = None,
        aux_weight: float = 0.4,
        se_weight: float = 0.2,
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
        # A buffer so that criterion.to(device) moves the weights along.
        self.register_buffer("class_weights", None if class_weights is None else class_weights.float())

    def forward(
        self, logits: Tensor, target: Tensor, aux: Mapping[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        aux = aux or {}
        main = self._pixel_loss(logits, target)
        total = main
        terms = {"main": float(main.detach())}
        presence: Tensor | None = None
        for name, value in aux.items():
            if value.dim() == 4:
                term = self._pixel_loss(value, target)
                total = total + self.aux_weight * term
            elif value.dim() == 2:
                if value.shape[1] != self.num_classes:
                    raise DataError(f"aux output {name!r} has {value.shape[1]} classes; expected {self.num_classes}")
                if presence is None:
                    presence = se_target(target, self.num_classes, self.ignore_index)
                term = F.binary_cross_entropy_with_logits(value.float(), presence)
                total = total + self.se_weight * term
            else:
                raise DataError(f"aux output {name!r} has shape {tuple(value.shape)}; expected (N, C, H, W) or (N, C)")
            terms[name] = float(term.detach())
        terms["loss"] = float(total.detach())
        return total, terms

    def _pixel_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(logits.float(), target, self.class_weights, self.ignore_index)

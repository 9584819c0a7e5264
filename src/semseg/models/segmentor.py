"""The composed segmentation model: ``(backbone, head, aux_heads)``."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SegmentationOutput(NamedTuple):
    """What ``forward(x, return_aux=True)`` returns.

    Attributes:
        logits: ``(N, C, H, W)`` at the input size.
        aux: extra outputs by name, e.g. ``{"aux": (N, C, H, W) logits, "se": (N, C) logits}``.
    """

    logits: Tensor
    aux: dict[str, Tensor]


class SegmentationModel(nn.Module):
    """Backbone features -> head logits at the head's stride -> bilinear resize to the input.

    Args:
        backbone: module whose ``forward(x)`` returns a list of features, high to low resolution,
            and which has ``out_channels`` and ``strides`` tuples.
        head: module mapping that feature list to logits ``(N, C, h, w)``.
        aux_heads: optional named heads on the same feature list; their dense outputs (4-D) are
            resized to the input, other outputs (e.g. EncNet's SE logits) are returned as they are.
        mean, std: input normalisation the model was trained with (0-1 RGB scale); used by
            :func:`semseg.predict`, not by ``forward`` (which takes normalised tensors).

    Shape:
        x: ``(N, 3, H, W)`` normalised float -> logits ``(N, num_classes, H, W)``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        aux_heads: dict[str, nn.Module] | None = None,
        num_classes: int | None = None,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.aux_heads = nn.ModuleDict(aux_heads or {})
        self.num_classes = num_classes
        self.mean = tuple(mean)
        self.std = tuple(std)
        # Filled by load_model / training so a checkpointed model carries its label semantics.
        self.class_names: list[str] | None = None
        self.palette: list[tuple[int, int, int]] | None = None

    def forward(self, x: Tensor, return_aux: bool = False) -> Tensor | SegmentationOutput:
        size = x.shape[-2:]
        features = self.backbone(x)
        logits = _resize(self.head(features), size)
        if not return_aux:
            return logits
        aux: dict[str, Tensor] = {}
        for name, aux_head in self.aux_heads.items():
            out = aux_head(features)
            aux[name] = _resize(out, size) if out.dim() == 4 else out
        return SegmentationOutput(logits, aux)


def _resize(t: Tensor, size: torch.Size) -> Tensor:
    if t.shape[-2:] == size:
        return t
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)

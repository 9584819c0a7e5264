"""Helpers shared by the builders: backbone + head + optional FCN aux head on stage 3."""

from __future__ import annotations

import os
from collections.abc import Sequence

from torch import nn

from semseg.models.backbones import build_backbone
from semseg.models.heads.fcn import FCNHead
from semseg.models.segmentor import SegmentationModel

WeightsArg = str | os.PathLike[str] | None


def dilated_model(
    backbone_name: str,
    head_factory: type[nn.Module],
    num_classes: int,
    *,
    output_stride: int,
    multi_grid: Sequence[int] | None = None,
    aux_loss: bool = False,
    backbone_weights: WeightsArg = None,
    backbone_options: dict[str, object] | None = None,
    **head_options: object,
) -> SegmentationModel:
    """Backbone at ``output_stride`` + ``head_factory(in_channels, in_strides, num_classes, ...)``
    + an FCN auxiliary head on the second-to-last feature when ``aux_loss``.

    ``backbone_options`` go to the backbone constructor (e.g. ``{"deep_stem": True}``)."""
    backbone = build_backbone(backbone_name, output_stride, multi_grid, backbone_weights, **(backbone_options or {}))
    chans, strides = backbone.out_channels, backbone.strides
    head = head_factory(chans, strides, num_classes, **head_options)
    aux = {"aux": FCNHead(chans, strides, num_classes, index=-2)} if aux_loss else None
    return SegmentationModel(backbone, head, aux, num_classes=num_classes)

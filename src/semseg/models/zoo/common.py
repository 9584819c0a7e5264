"""Helpers shared by the builders: backbone + head + optional FCN aux head on stage 3, and what
the deep-stem context networks (PSPNet, EncNet) share."""

from __future__ import annotations

import os
from collections.abc import Sequence

from torch import nn

from semseg.errors import InvalidOptionError
from semseg.models.backbones import build_backbone
from semseg.models.heads.fcn import FCNHead
from semseg.models.segmentor import SegmentationModel

WeightsArg = str | os.PathLike[str] | None

# PSPNet and EncNet are built NCHW unless create_model is told otherwise. docs/bench_context.md
# has two runs of their paper configurations (512x512, batch 2, 2 CPU threads; img/s NHWC over
# NCHW, train / inference): on 2026-11-24 PSPNet 1.00x / 0.90x and EncNet 0.95x / 1.06x, on
# 2026-11-30 PSPNet 1.08x / 1.04x and EncNet 1.18x / 0.95x. The two runs disagree by about the
# run-to-run noise (~10%), so the layout choice for these two is not settled; the other
# families gain clearly in NHWC in both runs (HRNetV2-W18 1.26x-1.46x train).
DEEP_STEM_CONTEXT_CHANNELS_LAST = False


def deep_stem_model(
    family: str,
    depth: int,
    head_factory: type[nn.Module],
    num_classes: int,
    output_stride: int,
    deep_stem: bool,
    aux_loss: bool,
    backbone_weights: WeightsArg,
    backbone_options: dict[str, object] | None = None,
    output_align_corners: bool = False,
    **head_options: object,
) -> SegmentationModel:
    """PSPNet's and EncNet's layout: a dilated ResNet-``depth`` with the optional deep stem (and
    the other ``backbone_options`` of :class:`~semseg.models.backbones.resnet.ResNet`),
    ``head_factory`` on its last feature and the FCN aux head on stage 3 when ``aux_loss``.

    torchvision's ImageNet ResNet files have the 7x7 stem: a deep stem together with
    ``backbone_weights`` raises :class:`~semseg.errors.InvalidOptionError`."""
    if deep_stem and backbone_weights is not None:
        raise InvalidOptionError(
            f"{family}_resnet{depth}: backbone_weights fit the 7x7 ResNet stem; pass deep_stem=False to use them"
        )
    return dilated_model(
        f"resnet{depth}",
        head_factory,
        num_classes,
        output_stride=output_stride,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
        backbone_options={"deep_stem": deep_stem, **(backbone_options or {})},
        output_align_corners=output_align_corners,
        **head_options,
    )


def resnet_options(
    family: str,
    backbone: str,
    deep_stem: bool,
    stem_width: int,
    dilate_first_block: bool,
    backbone_weights: WeightsArg,
) -> dict[str, object]:
    """The ResNet options a builder passes on (see :class:`~semseg.models.backbones.resnet.ResNet`),
    checked: a deep stem cannot take torchvision's ImageNet files, and non-ResNet backbones take
    none of them."""
    options = {"deep_stem": deep_stem, "stem_width": stem_width, "dilate_first_block": dilate_first_block}
    if not backbone.startswith("resnet"):
        return {}
    if deep_stem and backbone_weights is not None:
        raise InvalidOptionError(
            f"{family}_{backbone}: backbone_weights fit the 7x7 ResNet stem; pass deep_stem=False to use them"
        )
    return options


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
    output_align_corners: bool = False,
    **head_options: object,
) -> SegmentationModel:
    """Backbone at ``output_stride`` + ``head_factory(in_channels, in_strides, num_classes, ...)``
    + an FCN auxiliary head on the second-to-last feature when ``aux_loss``.

    ``backbone_options`` go to the backbone constructor (e.g. ``{"deep_stem": True}``);
    ``output_align_corners`` is the model's final resize's (a head's own resizes take theirs
    through ``head_options``)."""
    backbone = build_backbone(backbone_name, output_stride, multi_grid, backbone_weights, **(backbone_options or {}))
    chans, strides = backbone.out_channels, backbone.strides
    head = head_factory(chans, strides, num_classes, **head_options)
    aux = {"aux": FCNHead(chans, strides, num_classes, index=-2)} if aux_loss else None
    return SegmentationModel(backbone, head, aux, num_classes=num_classes, align_corners=output_align_corners)

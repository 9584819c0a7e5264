"""Semantic FPN (Kirillov et al., 2019, https://arxiv.org/abs/1901.02446) on ResNet-50/101 at
output stride 32: FPN P2 ... P5 (256 channels), a 128-channel semantic branch merged at 1/4 scale,
a 1x1 classifier and 4x bilinear upsampling. No dropout by default, as detectron2's
``SemSegFPNHead``; ``dropout=0.1, norm="batch"`` is mmsegmentation's ``FPNHead`` (on its
ResNetV1c: ``deep_stem=True, stem_width=32``). ``norm``: GroupNorm (``"group"``, the paper's) or
BatchNorm (``"batch"``) in the semantic branch."""

from __future__ import annotations

from semseg.models.backbones import build_backbone
from semseg.models.heads.fpn import SemanticFPNHead
from semseg.models.registry import register_model
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import WeightsArg, resnet_options


def _fpn(
    depth: int,
    num_classes: int,
    backbone_weights: WeightsArg,
    dropout: float = 0.0,
    deep_stem: bool = False,
    stem_width: int = 32,
    norm: str = "group",
) -> SegmentationModel:
    resnet = resnet_options("fpn", f"resnet{depth}", deep_stem, stem_width, False, backbone_weights)
    backbone = build_backbone(f"resnet{depth}", output_stride=32, weights=backbone_weights, **resnet)
    head = SemanticFPNHead(backbone.out_channels, backbone.strides, num_classes, dropout=dropout, norm=norm)
    return SegmentationModel(backbone, head, num_classes=num_classes)


@register_model
def fpn_resnet50(
    *,
    num_classes: int = 21,
    dropout: float = 0.0,
    deep_stem: bool = False,
    stem_width: int = 32,
    norm: str = "group",
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """Semantic FPN on ResNet-50."""
    return _fpn(50, num_classes, backbone_weights, dropout, deep_stem, stem_width, norm)


@register_model
def fpn_resnet101(
    *,
    num_classes: int = 21,
    dropout: float = 0.0,
    deep_stem: bool = False,
    stem_width: int = 32,
    norm: str = "group",
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """Semantic FPN on ResNet-101."""
    return _fpn(101, num_classes, backbone_weights, dropout, deep_stem, stem_width, norm)

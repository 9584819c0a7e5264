"""Dilated ResNet + plain FCN head (torchvision's ``fcn_resnet50`` design): the simplest strong
baseline; named ``fcn_{backbone}_d{output_stride}``."""

from __future__ import annotations

from semseg.models.heads.fcn import FCNHead
from semseg.models.registry import register_variants
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import WeightsArg, dilated_model, resnet_options


def fcn_resnet(
    backbone: str,
    *,
    num_classes: int = 21,
    output_stride: int = 8,
    aux_loss: bool = False,
    channels: int | None = None,
    num_convs: int = 1,
    concat_input: bool = False,
    deep_stem: bool = False,
    stem_width: int = 32,
    dilate_first_block: bool = False,
    align_corners: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """FCN head (3x3 conv-BN-ReLU, dropout, 1x1 classifier) on a dilated ``backbone``.
    mmsegmentation's ``fcn_r50-d8`` is ``channels=512, num_convs=2, concat_input=True`` on
    ``deep_stem=True, stem_width=32`` (its ResNetV1c)."""
    return dilated_model(
        backbone,
        FCNHead,
        num_classes,
        output_stride=output_stride,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
        backbone_options=resnet_options("fcn", backbone, deep_stem, stem_width, dilate_first_block, backbone_weights),
        output_align_corners=align_corners,
        channels=channels,
        num_convs=num_convs,
        concat_input=concat_input,
    )


register_variants(
    fcn_resnet,
    {
        "fcn_resnet18_d8": ("resnet18", "FCN head on ResNet-18 at output stride 8 (a small model for quick runs)."),
        "fcn_resnet50_d8": ("resnet50", "FCN head on ResNet-50 at output stride 8."),
        "fcn_resnet101_d8": ("resnet101", "FCN head on ResNet-101 at output stride 8."),
    },
)

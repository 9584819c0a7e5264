"""Dilated ResNet + plain FCN head (torchvision's ``fcn_resnet50`` design): the simplest strong
baseline; named ``fcn_{backbone}_d{output_stride}``."""

from __future__ import annotations

from semseg.models.heads.fcn import FCNHead
from semseg.models.registry import register_variants
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import WeightsArg, dilated_model


def fcn_resnet(
    backbone: str,
    *,
    num_classes: int = 21,
    output_stride: int = 8,
    aux_loss: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """FCN head (3x3 conv-BN-ReLU, dropout, 1x1 classifier) on a dilated ``backbone``."""
    return dilated_model(
        backbone,
        FCNHead,
        num_classes,
        output_stride=output_stride,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
    )


register_variants(
    fcn_resnet,
    {
        "fcn_resnet18_d8": ("resnet18", "FCN head on ResNet-18 at output stride 8 (a small model for quick runs)."),
        "fcn_resnet50_d8": ("resnet50", "FCN head on ResNet-50 at output stride 8."),
        "fcn_resnet101_d8": ("resnet101", "FCN head on ResNet-101 at output stride 8."),
    },
)

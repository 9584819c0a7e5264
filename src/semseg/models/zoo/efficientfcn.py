"""EfficientFCN (Liu et al., https://arxiv.org/abs/2008.10487): an undilated ResNet (output stride
32) and the holistically-guided decoder that rebuilds stride-8 features from codewords."""

from __future__ import annotations

from semseg.models.heads.efficientfcn import EfficientFCNHead
from semseg.models.registry import register_model
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import WeightsArg, dilated_model


def _efficientfcn(
    depth: int, num_classes: int, num_codes: int, aux_loss: bool, backbone_weights: WeightsArg
) -> SegmentationModel:
    # output_stride is fixed at 32: avoiding dilation is the point of the design.
    return dilated_model(
        f"resnet{depth}",
        EfficientFCNHead,
        num_classes,
        output_stride=32,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
        num_codes=num_codes,
    )


@register_model
def efficientfcn_resnet50(
    *, num_classes: int = 21, num_codes: int = 256, aux_loss: bool = False, backbone_weights: WeightsArg = None
) -> SegmentationModel:
    """EfficientFCN on ResNet-50 (OS32): 256 holistic codewords, stride-8 output."""
    return _efficientfcn(50, num_classes, num_codes, aux_loss, backbone_weights)


@register_model
def efficientfcn_resnet101(
    *, num_classes: int = 21, num_codes: int = 256, aux_loss: bool = False, backbone_weights: WeightsArg = None
) -> SegmentationModel:
    """EfficientFCN on ResNet-101 (OS32): 256 holistic codewords, stride-8 output."""
    return _efficientfcn(101, num_classes, num_codes, aux_loss, backbone_weights)

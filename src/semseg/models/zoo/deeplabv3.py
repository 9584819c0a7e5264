"""DeepLabv3 (https://arxiv.org/abs/1706.05587) and DeepLabv3+ (https://arxiv.org/abs/1802.02611)."""

from __future__ import annotations

from collections.abc import Sequence

from semseg.models.heads.deeplabv3 import DeepLabV3Head, DeepLabV3PlusHead
from semseg.models.registry import register_model
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import WeightsArg, dilated_model


@register_model
def deeplabv3_resnet50(
    *,
    num_classes: int = 21,
    output_stride: int = 16,
    multi_grid: Sequence[int] | None = (1, 2, 4),
    aux_loss: bool = False,
    image_pooling: bool = True,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """DeepLabv3 on ResNet-50: multi-grid (1, 2, 4), ASPP rates 6/12/18 at OS16 (doubled at OS8)."""
    return dilated_model(
        "resnet50",
        DeepLabV3Head,
        num_classes,
        output_stride=output_stride,
        multi_grid=multi_grid,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
        image_pooling=image_pooling,
    )


@register_model
def deeplabv3_resnet101(
    *,
    num_classes: int = 21,
    output_stride: int = 16,
    multi_grid: Sequence[int] | None = (1, 2, 4),
    aux_loss: bool = False,
    image_pooling: bool = True,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """DeepLabv3 on ResNet-101: multi-grid (1, 2, 4), ASPP rates 6/12/18 at OS16 (doubled at OS8)."""
    return dilated_model(
        "resnet101",
        DeepLabV3Head,
        num_classes,
        output_stride=output_stride,
        multi_grid=multi_grid,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
        image_pooling=image_pooling,
    )


@register_model
def deeplabv3plus_resnet50(
    *,
    num_classes: int = 21,
    output_stride: int = 16,
    multi_grid: Sequence[int] | None = (1, 2, 4),
    aux_loss: bool = False,
    separable: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """DeepLabv3+ on ResNet-50: DeepLabv3 encoder + 48-channel stride-4 decoder."""
    return dilated_model(
        "resnet50",
        DeepLabV3PlusHead,
        num_classes,
        output_stride=output_stride,
        multi_grid=multi_grid,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
        separable=separable,
    )


@register_model
def deeplabv3plus_resnet101(
    *,
    num_classes: int = 21,
    output_stride: int = 16,
    multi_grid: Sequence[int] | None = (1, 2, 4),
    aux_loss: bool = False,
    separable: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """DeepLabv3+ on ResNet-101: DeepLabv3 encoder + 48-channel stride-4 decoder."""
    return dilated_model(
        "resnet101",
        DeepLabV3PlusHead,
        num_classes,
        output_stride=output_stride,
        multi_grid=multi_grid,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
        separable=separable,
    )


@register_model
def deeplabv3plus_mobilenetv2(
    *, num_classes: int = 21, output_stride: int = 16, separable: bool = True, backbone_weights: WeightsArg = None
) -> SegmentationModel:
    """DeepLabv3+ on MobileNetV2 at OS16, with depthwise-separable ASPP and decoder by default."""
    return dilated_model(
        "mobilenetv2",
        DeepLabV3PlusHead,
        num_classes,
        output_stride=output_stride,
        backbone_weights=backbone_weights,
        separable=separable,
    )

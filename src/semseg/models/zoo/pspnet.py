"""PSPNet (Zhao et al., https://arxiv.org/abs/1612.01105): dilated ResNet at output stride 8 with
the deep (three 3x3 convs) stem the paper's ResNet used, pyramid pooling over 1, 2, 3, 6 bins,
and the deeply supervised FCN auxiliary head on stage 3 (``aux_loss=True``, loss weight 0.4)."""

from __future__ import annotations

from collections.abc import Sequence

from semseg.errors import InvalidOptionError
from semseg.models.heads.psp import PSPHead
from semseg.models.registry import register_model
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import WeightsArg, dilated_model

# name: (num_classes, published millions of parameters, source / note)
PUBLISHED_PARAMS = {
    "pspnet_resnet101": (
        19,
        65.6,
        "PSPNet ResNet-101 (Cityscapes) without the aux head; 68.0M with aux_loss=True. Our deep stem is "
        "32-32-64 wide (the original 64-64-128), about 0.1M fewer",
    ),
}


def check_stem(model: str, deep_stem: bool, backbone_weights: WeightsArg) -> None:
    """torchvision's ImageNet ResNet files have the 7x7 stem; a deep stem cannot take them."""
    if deep_stem and backbone_weights is not None:
        raise InvalidOptionError(f"{model}: backbone_weights fit the 7x7 ResNet stem; pass deep_stem=False to use them")


def _pspnet(
    name: str,
    depth: int,
    num_classes: int,
    output_stride: int,
    bins: Sequence[int],
    deep_stem: bool,
    aux_loss: bool,
    backbone_weights: WeightsArg,
    bottleneck_kernel: int,
) -> SegmentationModel:
    check_stem(name, deep_stem, backbone_weights)
    return dilated_model(
        f"resnet{depth}",
        PSPHead,
        num_classes,
        output_stride=output_stride,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
        backbone_options={"deep_stem": deep_stem},
        bins=bins,
        bottleneck_kernel=bottleneck_kernel,
    )


@register_model
def pspnet_resnet50(
    *,
    num_classes: int = 21,
    output_stride: int = 8,
    bins: Sequence[int] = (1, 2, 3, 6),
    deep_stem: bool = True,
    bottleneck_kernel: int = 3,
    aux_loss: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """PSPNet on a dilated ResNet-50 (OS8, deep stem), PPM bins 1/2/3/6."""
    return _pspnet(
        "pspnet_resnet50",
        50,
        num_classes,
        output_stride,
        bins,
        deep_stem,
        aux_loss,
        backbone_weights,
        bottleneck_kernel,
    )


@register_model
def pspnet_resnet101(
    *,
    num_classes: int = 21,
    output_stride: int = 8,
    bins: Sequence[int] = (1, 2, 3, 6),
    deep_stem: bool = True,
    bottleneck_kernel: int = 3,
    aux_loss: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """PSPNet on a dilated ResNet-101 (OS8, deep stem), PPM bins 1/2/3/6."""
    return _pspnet(
        "pspnet_resnet101",
        101,
        num_classes,
        output_stride,
        bins,
        deep_stem,
        aux_loss,
        backbone_weights,
        bottleneck_kernel,
    )

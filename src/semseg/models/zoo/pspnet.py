"""PSPNet (Zhao et al., https://arxiv.org/abs/1612.01105): dilated ResNet at output stride 8 with
the deep (three 3x3 convs) stem the paper's ResNet used, pyramid pooling over 1, 2, 3, 6 bins,
and the deeply supervised FCN auxiliary head on stage 3 (``aux_loss=True``, loss weight 0.4)."""

from __future__ import annotations

from collections.abc import Sequence

from semseg.errors import InvalidOptionError
from semseg.models.heads.psp import PSPHead
from semseg.models.registry import register_variants
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import WeightsArg, dilated_model


def check_stem(model: str, deep_stem: bool, backbone_weights: WeightsArg) -> None:
    """torchvision's ImageNet ResNet files have the 7x7 stem; a deep stem cannot take them."""
    if deep_stem and backbone_weights is not None:
        raise InvalidOptionError(f"{model}: backbone_weights fit the 7x7 ResNet stem; pass deep_stem=False to use them")


def pspnet(
    depth: int,
    *,
    num_classes: int = 21,
    output_stride: int = 8,
    bins: Sequence[int] = (1, 2, 3, 6),
    deep_stem: bool = True,
    bottleneck_kernel: int = 3,
    aux_loss: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """PSPNet on a dilated ResNet-``depth``: pyramid pooling over ``bins``, a
    ``bottleneck_kernel`` conv over the features and the pooled maps, then the classifier."""
    check_stem(f"pspnet_resnet{depth}", deep_stem, backbone_weights)
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


register_variants(
    pspnet,
    {
        f"pspnet_resnet{depth}": (depth, f"PSPNet on a dilated ResNet-{depth} (OS8, deep stem), PPM bins 1/2/3/6.")
        for depth in (50, 101)
    },
    # NCHW by default: in NHWC the train step measured 0.95x (PSPNet, whose 3x3 conv over 4096
    # channels oneDNN runs slower in NHWC) and 0.98x (EncNet) at 512x512 on CPU.
    channels_last=False,
)

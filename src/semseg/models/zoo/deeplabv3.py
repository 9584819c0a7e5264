"""DeepLabv3 (https://arxiv.org/abs/1706.05587) and DeepLabv3+ (https://arxiv.org/abs/1802.02611).

Defaults follow the released TF code that produced the papers' numbers (tensorflow/models
``research/deeplab``): DeepLabv3's head has no 3x3 conv after the ASPP (``head_form="paper"``;
``"torchvision"`` is torchvision's head, whose weights load into it), separable convs have a
ReLU after the depthwise BN (``depthwise_relu``), and DeepLabv3+'s MobileNetV2 encoder ends at the
320-channel block (``final_conv=False``)."""

from __future__ import annotations

from collections.abc import Sequence

from semseg.models.heads.deeplabv3 import DeepLabV3Head, DeepLabV3PlusHead
from semseg.models.registry import register_model, register_variants
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import WeightsArg, dilated_model, resnet_options


def deeplabv3(
    backbone: str,
    *,
    num_classes: int = 21,
    output_stride: int = 16,
    multi_grid: Sequence[int] | None = (1, 2, 4),
    aux_loss: bool = False,
    image_pooling: bool = True,
    head_form: str = "paper",
    channels: int = 256,
    project_kernel: int = 1,
    deep_stem: bool = False,
    stem_width: int = 32,
    dilate_first_block: bool = False,
    align_corners: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """DeepLabv3 on a dilated ``backbone``: multi-grid in the last stage, ASPP (rates 6/12/18 at
    OS16, doubled at OS8) with image pooling, then the classifier (``head_form="paper"``) or a 3x3
    conv and the classifier (``head_form="torchvision"``, torchvision's ``DeepLabHead``).
    ``channels``/``project_kernel``: ASPP width and projection kernel (mmsegmentation: 512 and 3);
    ``deep_stem``, ``stem_width``, ``dilate_first_block``: the ResNet's (mmsegmentation's ResNetV1c:
    ``deep_stem=True, stem_width=32``); ``align_corners``: of the output's resize."""
    return dilated_model(
        backbone,
        DeepLabV3Head,
        num_classes,
        output_stride=output_stride,
        multi_grid=multi_grid,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
        backbone_options=resnet_options(
            "deeplabv3", backbone, deep_stem, stem_width, dilate_first_block, backbone_weights
        ),
        output_align_corners=align_corners,
        image_pooling=image_pooling,
        form=head_form,
        channels=channels,
        project_kernel=project_kernel,
    )


def deeplabv3plus(
    backbone: str,
    *,
    num_classes: int = 21,
    output_stride: int = 16,
    multi_grid: Sequence[int] | None = (1, 2, 4),
    aux_loss: bool = False,
    separable: bool = False,
    depthwise_relu: bool = True,
    decoder_convs: int = 2,
    channels: int = 256,
    project_kernel: int = 1,
    deep_stem: bool = False,
    stem_width: int = 32,
    dilate_first_block: bool = False,
    align_corners: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """DeepLabv3+ on a dilated ``backbone``: the DeepLabv3 encoder, then the decoder over the
    stride-4 feature (48-channel 1x1 reduction, ``decoder_convs`` 3x3 refinement convs).
    ``depthwise_relu`` (with ``separable``): ReLU between each depthwise BN and pointwise conv.
    ``channels``, ``project_kernel``, ``deep_stem``, ``stem_width``, ``dilate_first_block``,
    ``align_corners``: as :func:`deeplabv3`."""
    return dilated_model(
        backbone,
        DeepLabV3PlusHead,
        num_classes,
        output_stride=output_stride,
        multi_grid=multi_grid,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
        backbone_options=resnet_options(
            "deeplabv3plus", backbone, deep_stem, stem_width, dilate_first_block, backbone_weights
        ),
        output_align_corners=align_corners,
        separable=separable,
        depthwise_relu=depthwise_relu,
        decoder_convs=decoder_convs,
        channels=channels,
        project_kernel=project_kernel,
    )


register_variants(
    deeplabv3,
    {
        f"deeplabv3_resnet{depth}": (
            f"resnet{depth}",
            f"DeepLabv3 on ResNet-{depth}: multi-grid (1, 2, 4), ASPP rates 6/12/18 at OS16 (doubled at OS8); "
            "head_form='torchvision' for torchvision's head.",
        )
        for depth in (50, 101)
    },
)
register_variants(
    deeplabv3plus,
    {
        f"deeplabv3plus_resnet{depth}": (
            f"resnet{depth}",
            f"DeepLabv3+ on ResNet-{depth}: DeepLabv3 encoder + 48-channel stride-4 decoder.",
        )
        for depth in (50, 101)
    },
)


@register_model
def deeplabv3_mobilenetv2(
    *,
    num_classes: int = 21,
    output_stride: int = 16,
    image_pooling: bool = True,
    head_form: str = "paper",
    final_conv: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """DeepLabv3 on MobileNetV2 at OS16: ASPP (rates 6/12/18, doubled at OS8) with image pooling
    on the last feature, then the classifier, as in MobileNetV2's segmentation experiments
    (https://arxiv.org/abs/1801.04381, Sec. 6.3). The encoder ends at the 320-channel block;
    ``final_conv=True`` keeps torchvision's 1280-channel 1x1 conv after it.

    Shape: ``(N, 3, H, W)`` -> logits ``(N, num_classes, H, W)``."""
    return dilated_model(
        "mobilenetv2",
        DeepLabV3Head,
        num_classes,
        output_stride=output_stride,
        backbone_weights=backbone_weights,
        backbone_options={"final_conv": final_conv},
        image_pooling=image_pooling,
        form=head_form,
    )


@register_model
def deeplabv3plus_mobilenetv2(
    *,
    num_classes: int = 21,
    output_stride: int = 16,
    separable: bool = True,
    depthwise_relu: bool = True,
    final_conv: bool = False,
    decoder_convs: int = 2,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """DeepLabv3+ on MobileNetV2 at OS16, with depthwise-separable ASPP and decoder by default.
    The encoder ends at the 320-channel block as in the paper's code; ``final_conv=True`` keeps
    torchvision's 1280-channel 1x1 conv after it (and ``depthwise_relu=False`` drops the ReLU
    after each depthwise BN: both together are the network semseg built before 2026-11-30)."""
    return dilated_model(
        "mobilenetv2",
        DeepLabV3PlusHead,
        num_classes,
        output_stride=output_stride,
        backbone_weights=backbone_weights,
        backbone_options={"final_conv": final_conv},
        separable=separable,
        depthwise_relu=depthwise_relu,
        decoder_convs=decoder_convs,
    )

"""HRNetV2 for segmentation (Wang et al., https://arxiv.org/abs/1908.07919): the HRNet backbone
(four parallel resolutions, repeated multi-resolution fusion) and the HRNetV2 head (all branches
upsampled to 1/4, concatenated, 1x1 conv-BN-ReLU, classifier). Any input size works.

Defaults follow the released code (HRNet/HRNet-Semantic-Segmentation ``seg_hrnet.py``): the
head's mixing conv has a bias (``head_bias=True``; ``False`` is mmsegmentation's ``FCNHead``).
Every bilinear resize (the backbone's fusions, the head's and the output's) uses
``align_corners=False``: the ``master``/``pytorch-v1.1`` code calls ``F.upsample(mode="bilinear")``
(PyTorch's default, ``False``) and every experiment config of the later branches sets
``MODEL.ALIGN_CORNERS: False``; ``align_corners=True`` is that config's default value."""

from __future__ import annotations

from semseg.models.backbones.hrnet import HRNet
from semseg.models.heads.hrnet import HRNetV2Head
from semseg.models.registry import register_model
from semseg.models.segmentor import SegmentationModel


def hrnetv2(width: int, num_classes: int, head_bias: bool = True, align_corners: bool = False) -> SegmentationModel:
    """HRNetV2-W``width`` (18, 32 or 48; others raise :class:`~semseg.errors.InvalidOptionError`)."""
    backbone = HRNet(width, align_corners)
    head = HRNetV2Head(
        backbone.out_channels, backbone.strides, num_classes, bias=head_bias, align_corners=align_corners
    )
    return SegmentationModel(backbone, head, num_classes=num_classes, align_corners=align_corners)


@register_model
def hrnetv2_w18(*, num_classes: int = 21, head_bias: bool = True, align_corners: bool = False) -> SegmentationModel:
    """HRNetV2-W18: branch widths 18/36/72/144."""
    return hrnetv2(18, num_classes, head_bias, align_corners)


@register_model
def hrnetv2_w32(*, num_classes: int = 21, head_bias: bool = True, align_corners: bool = False) -> SegmentationModel:
    """HRNetV2-W32: branch widths 32/64/128/256."""
    return hrnetv2(32, num_classes, head_bias, align_corners)


@register_model
def hrnetv2_w48(*, num_classes: int = 21, head_bias: bool = True, align_corners: bool = False) -> SegmentationModel:
    """HRNetV2-W48: branch widths 48/96/192/384."""
    return hrnetv2(48, num_classes, head_bias, align_corners)

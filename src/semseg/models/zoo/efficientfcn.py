"""EfficientFCN (Liu et al., https://arxiv.org/abs/2008.10487): an undilated ResNet (output stride
32) and the holistically-guided decoder that rebuilds stride-8 features from codewords.

Defaults follow the released code (jianbo909/efficientFCN ``encoding/models/base.py`` and
``resnetV2.py``): the backbone is a ResNet-D (``deep_stem`` 32-32-64 and ``avg_down`` shortcuts)
and the decoder resizes with ``align_corners=True`` (the output's resize keeps ``False``, as the
release's ``up_kwargs``). ``deep_stem=False, avg_down=False`` is the torchvision ResNet whose
ImageNet weights ``backbone_weights`` takes."""

from __future__ import annotations

from semseg.errors import InvalidOptionError
from semseg.models.heads.efficientfcn import EfficientFCNHead
from semseg.models.registry import register_model
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import WeightsArg, dilated_model


def _efficientfcn(
    depth: int,
    num_classes: int,
    num_codes: int,
    aux_loss: bool,
    backbone_weights: WeightsArg,
    deep_stem: bool,
    avg_down: bool,
    align_corners: bool,
) -> SegmentationModel:
    if backbone_weights is not None and (deep_stem or avg_down):
        raise InvalidOptionError(
            f"efficientfcn_resnet{depth}: backbone_weights fit torchvision's ResNet; pass deep_stem=False and "
            "avg_down=False to use them"
        )
    # output_stride is fixed at 32: avoiding dilation is the point of the design.
    return dilated_model(
        f"resnet{depth}",
        EfficientFCNHead,
        num_classes,
        output_stride=32,
        aux_loss=aux_loss,
        backbone_weights=backbone_weights,
        backbone_options={"deep_stem": deep_stem, "stem_width": 32, "avg_down": avg_down},
        num_codes=num_codes,
        align_corners=align_corners,
    )


@register_model
def efficientfcn_resnet50(
    *,
    num_classes: int = 21,
    num_codes: int = 256,
    deep_stem: bool = True,
    avg_down: bool = True,
    align_corners: bool = True,
    aux_loss: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """EfficientFCN on ResNet-D-50 (OS32): 256 holistic codewords, stride-8 output."""
    return _efficientfcn(50, num_classes, num_codes, aux_loss, backbone_weights, deep_stem, avg_down, align_corners)


@register_model
def efficientfcn_resnet101(
    *,
    num_classes: int = 21,
    num_codes: int = 256,
    deep_stem: bool = True,
    avg_down: bool = True,
    align_corners: bool = True,
    aux_loss: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """EfficientFCN on ResNet-D-101 (OS32): 256 holistic codewords, stride-8 output."""
    return _efficientfcn(101, num_classes, num_codes, aux_loss, backbone_weights, deep_stem, avg_down, align_corners)

"""PSPNet (Zhao et al., https://arxiv.org/abs/1612.01105): dilated ResNet at output stride 8 with
the deep (three 3x3 convs) stem the paper's ResNet used, pyramid pooling over 1, 2, 3, 6 bins,
and the deeply supervised FCN auxiliary head on stage 3 (``aux_loss=True``, loss weight 0.4).

Defaults follow the authors' release (hszhao/semseg ``model/pspnet.py``, ``model/resnet.py``, as
the Caffe PSPNet): a 64-64-128 deep stem (``stem_width=64``), every block of ``layer3`` and
``layer4`` dilated by 2 and 4, the first included (``dilate_first_block``), and bilinear
resizing with ``align_corners=True``. mmsegmentation's PSPNet is ``stem_width=32,
dilate_first_block=False, align_corners=False``."""

from __future__ import annotations

from collections.abc import Sequence

from semseg.models.heads.psp import PSPHead
from semseg.models.registry import register_variants
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import DEEP_STEM_CONTEXT_CHANNELS_LAST, WeightsArg, deep_stem_model


def pspnet(
    depth: int,
    *,
    num_classes: int = 21,
    output_stride: int = 8,
    bins: Sequence[int] = (1, 2, 3, 6),
    deep_stem: bool = True,
    stem_width: int = 64,
    dilate_first_block: bool = True,
    align_corners: bool = True,
    bottleneck_kernel: int = 3,
    aux_loss: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """PSPNet on a dilated ResNet-``depth``: pyramid pooling over ``bins``, a
    ``bottleneck_kernel`` conv over the features and the pooled maps, then the classifier.
    ``stem_width``, ``dilate_first_block``: see :class:`~semseg.models.backbones.resnet.ResNet`;
    ``align_corners``: of every bilinear resize (pyramid and output)."""
    return deep_stem_model(
        "pspnet",
        depth,
        PSPHead,
        num_classes,
        output_stride,
        deep_stem,
        aux_loss,
        backbone_weights,
        backbone_options={"stem_width": stem_width, "dilate_first_block": dilate_first_block},
        output_align_corners=align_corners,
        bins=bins,
        bottleneck_kernel=bottleneck_kernel,
        align_corners=align_corners,
    )


register_variants(
    pspnet,
    {
        f"pspnet_resnet{depth}": (depth, f"PSPNet on a dilated ResNet-{depth} (OS8, deep stem), PPM bins 1/2/3/6.")
        for depth in (50, 101)
    },
    channels_last=DEEP_STEM_CONTEXT_CHANNELS_LAST,
)

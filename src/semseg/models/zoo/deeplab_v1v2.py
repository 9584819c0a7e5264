"""DeepLab v1 (Chen et al., ICLR 2015, https://arxiv.org/abs/1412.7062) and DeepLab v2
(Chen et al., TPAMI 2017, https://arxiv.org/abs/1606.00915), without the dense CRF (a separate
post-processing step).

* ``deeplabv1_vgg16``: DeepLab-LargeFOV: VGG-16 with ``pool4``/``pool5`` at stride 1, ``conv5_*``
  dilated by 2, ``fc6`` a 3x3 convolution with dilation 12 and 1024 channels, ``fc7`` 1x1 with
  1024, ``fc8`` the classifier; logits at 1/8, upsampled bilinearly. ``msc=True`` adds
  DeepLab-MSc's prediction branches on the input and ``pool1`` ... ``pool4``.
* ``deeplabv2_resnet101`` / ``deeplabv2_resnet50``: ResNet dilated to output stride 8 (``layer3``
  dilation 2, ``layer4`` dilation 4) with ASPP-L: four 3x3 classifiers at rates 6, 12, 18, 24 whose
  logits are summed. The paper also fused predictions over three input scales (its own "MSC"
  training); that is an inference-time option elsewhere, not part of this network. The ResNet
  is the released Caffe one by default (the prototxt of DeepLab v2, mirrored by
  kazuto1011/deeplab-pytorch): stride on each bottleneck's first 1x1 conv (``style="caffe"``),
  every block of ``layer3``/``layer4`` dilated by 2/4 (``dilate_first_block=True``) and a stem
  max-pool that rounds up (``stem_pool_ceil=True``). ``style="pytorch", dilate_first_block=False,
  stem_pool_ceil=False`` is the torchvision-style ResNet whose ImageNet weights ``backbone_weights``
  takes.
* ``deeplabv1_vgg16`` follows the released ``train.prototxt`` of DeepLab-LargeFOV: a 3x3 stride-1
  average pool (``pool5a``, ``pool5a=True``) between ``pool5`` and ``fc6``, element-wise dropout
  0.5 after ``fc6``/``fc7`` and, in DeepLab-MSc, after each branch's two ReLUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from semseg.errors import CheckpointError
from semseg.models.backbones import build_backbone
from semseg.models.backbones.vgg import VGG16
from semseg.models.heads.deeplab_v1v2 import ASPPv2Head, LargeFOVHead
from semseg.models.registry import register_model
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import WeightsArg


@register_model
def deeplabv1_vgg16(
    *, num_classes: int = 21, msc: bool = False, pool5a: bool = True, backbone_weights: WeightsArg = None
) -> SegmentationModel:
    """DeepLab-LargeFOV on VGG-16 (output stride 8, ``pool5a``, ``fc6`` 3x3 with dilation 12, 1024
    channels); ``msc=True`` is DeepLab-MSc-LargeFOV (the backbone then also returns the input
    image, which the head's first MSc branch reads). ``pool5a=False`` leaves out the 3x3 average
    pool before ``fc6``. ``backbone_weights`` load the 13 convolutions only (DeepLab's subsampled
    ``fc6`` is not reproduced)."""
    backbone = VGG16("deeplab", with_input=msc, pool5a=pool5a)
    if backbone_weights is not None:
        _load_convs(backbone, backbone_weights)
    head = LargeFOVHead(backbone.out_channels, backbone.strides, num_classes, msc=msc)
    model = SegmentationModel(backbone, head, num_classes=num_classes)
    if msc:
        model.register_load_state_dict_pre_hook(_msc_keys_before_head)
    return model


def _msc_keys_before_head(module: Any, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    # Checkpoints written while the MSc branches were a module of the model itself hold them as
    # "msc.*"; they now live in the head ("head.msc.*"). Renamed here so those checkpoints load.
    old = prefix + "msc."
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[prefix + "head.msc." + key[len(old) :]] = state_dict.pop(key)


def _load_convs(backbone: VGG16, weights: WeightsArg) -> None:
    from semseg.models.backbones.weights import load_state_file, resolve_weights, verify_hash

    path = resolve_weights("vgg16", weights)  # type: ignore[arg-type]
    verify_hash(path)
    state = {k: v for k, v in load_state_file(path).items() if k.startswith("features.")}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if unexpected or any(k.startswith("features.") for k in missing):
        raise CheckpointError(f"{path}: VGG-16 convolutions do not fit: missing {missing}, unexpected {unexpected}")
    print(f"loaded {len(state)} tensors into DeepLab's VGG-16 convolutions from {path} (fc6/fc7 stay random)")


def _deeplabv2(
    depth: int, num_classes: int, rates: Sequence[int], backbone_weights: WeightsArg, **resnet: Any
) -> SegmentationModel:
    backbone = build_backbone(f"resnet{depth}", output_stride=8, weights=backbone_weights, **resnet)
    head = ASPPv2Head(backbone.out_channels, backbone.strides, num_classes, rates)
    return SegmentationModel(backbone, head, num_classes=num_classes)


@register_model
def deeplabv2_resnet101(
    *,
    num_classes: int = 21,
    rates: Sequence[int] = (6, 12, 18, 24),
    style: str = "caffe",
    dilate_first_block: bool = True,
    stem_pool_ceil: bool = True,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """DeepLab v2: ResNet-101 at output stride 8 + ASPP-L (summed 3x3 classifiers, rates 6/12/18/24).
    The ResNet options default to the released Caffe network (see the module docstring)."""
    return _deeplabv2(
        101,
        num_classes,
        rates,
        backbone_weights,
        style=style,
        dilate_first_block=dilate_first_block,
        stem_pool_ceil=stem_pool_ceil,
    )


@register_model
def deeplabv2_resnet50(
    *,
    num_classes: int = 21,
    rates: Sequence[int] = (6, 12, 18, 24),
    style: str = "caffe",
    dilate_first_block: bool = True,
    stem_pool_ceil: bool = True,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """DeepLab v2 on ResNet-50 (the paper's ablation backbone): output stride 8 + ASPP-L.
    The ResNet options default to the released Caffe network (see the module docstring)."""
    return _deeplabv2(
        50,
        num_classes,
        rates,
        backbone_weights,
        style=style,
        dilate_first_block=dilate_first_block,
        stem_pool_ceil=stem_pool_ceil,
    )

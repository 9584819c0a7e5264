"""FCN-32s, FCN-16s and FCN-8s on VGG-16, and FCN-32s on AlexNet (Long, Shelhamer and Darrell,
"Fully Convolutional Networks for Semantic Segmentation", https://arxiv.org/abs/1411.4038).

The upsamplings are fixed bilinear and the score layers start at zero, as in the released
``voc-fcn*/net.py`` (see :mod:`semseg.models.heads.fcn_skip`); ``learn_upsampling=True`` learns the
2x ones and ``at_once=True`` is the at-once FCN-8s/16s with its fixed pool3/pool4 scaling.

``padding="paper"`` (default) is the published network: ``conv1_1`` padded by 100, Caffe's
rounded-up pools, a valid 7x7 ``fc6``, and every sum and the output cropped by the offsets of
Caffe's ``Crop`` layer, so any input size works and the output has the input's size.
``padding="same"`` is the modern form: each map is ``input / stride`` and nothing is cropped, so the
convolutions do not run over the 100-pixel frame (``conv1`` sees ``(H + 198) x (W + 198)`` pixels in
the paper's form); the parameters are the same.

The backbones are built with ``with_input=True``: their first feature is the input image, whose
size :class:`~semseg.models.heads.fcn_skip.FCNSkipHead` crops its output to.
"""

from __future__ import annotations

from semseg.errors import InvalidOptionError, allowed
from semseg.models.backbones.alexnet import CaffeAlexNet
from semseg.models.backbones.vgg import PADDINGS, VGG16
from semseg.models.heads.fcn_skip import FCNSkipHead
from semseg.models.registry import register_model
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import WeightsArg


def _fcn_vgg16(
    variant: str,
    num_classes: int,
    padding: str,
    backbone_weights: WeightsArg,
    learn_upsampling: bool = False,
    at_once: bool = False,
) -> SegmentationModel:
    if padding not in PADDINGS:
        raise InvalidOptionError(f"padding={padding!r}; allowed: {allowed(PADDINGS)}")
    backbone = VGG16("fcn", padding, with_input=True)
    if backbone_weights is not None:
        _load_vgg16_classifier_weights(backbone, backbone_weights)
    head = FCNSkipHead(
        backbone.out_channels,
        backbone.strides,
        num_classes,
        backbone.coords,
        variant,
        learn_upsampling=learn_upsampling,
        at_once=at_once,
    )
    return SegmentationModel(backbone, head, num_classes=num_classes)


def _load_vgg16_classifier_weights(backbone: VGG16, weights: WeightsArg) -> None:
    """torchvision's ImageNet VGG-16 with its classifier turned into fc6/fc7, loaded strictly."""
    from semseg.models.backbones.weights import load_state_file, resolve_weights, verify_hash

    path = resolve_weights("vgg16", weights)  # type: ignore[arg-type]
    verify_hash(path)
    state = VGG16.convert_classifier(load_state_file(path))
    backbone.load_state_dict(state, strict=True)
    print(f"loaded {len(state)} tensors into the FCN VGG-16 (fc6/fc7 from the classifier) from {path}")


@register_model
def fcn32s_vgg16(
    *, num_classes: int = 21, padding: str = "paper", backbone_weights: WeightsArg = None
) -> SegmentationModel:
    """FCN-32s: VGG-16 scores at stride 32, upsampled 32x (fixed bilinear) and cropped."""
    return _fcn_vgg16("32s", num_classes, padding, backbone_weights)


@register_model
def fcn16s_vgg16(
    *,
    num_classes: int = 21,
    padding: str = "paper",
    learn_upsampling: bool = False,
    at_once: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """FCN-16s: FCN-32s scores upsampled 2x (fixed bilinear; ``learn_upsampling=True``: learned,
    bilinear init) plus pool4 scores (pool4 scaled by 0.01 with ``at_once``), then 16x."""
    return _fcn_vgg16("16s", num_classes, padding, backbone_weights, learn_upsampling, at_once)


@register_model
def fcn8s_vgg16(
    *,
    num_classes: int = 21,
    padding: str = "paper",
    learn_upsampling: bool = False,
    at_once: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """FCN-8s: FCN-16s's fused scores upsampled 2x plus pool3 scores, then 8x to the input;
    ``at_once=True`` is ``voc-fcn8s-atonce`` (pool4 x 0.01, pool3 x 0.0001 before scoring)."""
    return _fcn_vgg16("8s", num_classes, padding, backbone_weights, learn_upsampling, at_once)


@register_model
def fcn32s_alexnet(*, num_classes: int = 21) -> SegmentationModel:
    """FCN-AlexNet: Caffe's AlexNet with pad 100, fc6/fc7 as 6x6/1x1 convs, a fixed 63x63 stride-32
    bilinear upsampling and a crop at offset 18, as the published ``voc-fcn-alexnet``."""
    backbone = CaffeAlexNet(with_input=True)
    head = FCNSkipHead(backbone.out_channels, backbone.strides, num_classes, backbone.coords, "32s", final_kernel=63)
    return SegmentationModel(backbone, head, num_classes=num_classes)

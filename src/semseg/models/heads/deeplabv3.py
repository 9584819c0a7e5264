"""DeepLabv3 (https://arxiv.org/abs/1706.05587) and DeepLabv3+ (https://arxiv.org/abs/1802.02611)
heads.

DeepLabv3's head comes in two forms (``form``):

* ``"paper"``: ASPP (its 1x1 projection with BN and ReLU, dropout 0.1) straight into the 1x1
  classifier: the paper's Sec. 3.3 and the released code that produced its numbers
  (tensorflow/models ``research/deeplab/model.py``: ``concat_projection``, then the logits).
* ``"torchvision"``: torchvision's ``DeepLabHead``: a 3x3 conv-BN-ReLU between the ASPP and the
  classifier (and dropout 0.5 in the ASPP projection). Its keys and shapes are torchvision's, so
  its ``deeplabv3_resnet50/101`` weights load into this form bit-identically.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semseg.errors import InvalidOptionError, allowed
from semseg.models.heads import index_of_stride
from semseg.models.heads.aspp import ASPP, aspp_rates
from semseg.models.layers import ConvBNReLU, conv_bn_relu

HEAD_FORMS = ("paper", "torchvision")


class DeepLabV3Head(nn.Module):
    """ASPP on the last feature, (with ``form="torchvision"`` a 3x3 conv-BN-ReLU,) the 1x1 classifier.

    Args:
        form: ``"paper"`` or ``"torchvision"`` (see the module docstring).
        channels: width of the ASPP branches and projection (256; mmsegmentation's heads: 512).
        project_kernel: kernel of the ASPP projection (1; mmsegmentation: 3).

    Shape: last feature ``(N, C, H/os, W/os)`` -> logits ``(N, num_classes, H/os, W/os)``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        channels: int = 256,
        rates: Sequence[int] | None = None,
        image_pooling: bool = True,
        form: str = "paper",
        project_kernel: int = 1,
    ) -> None:
        super().__init__()
        if form not in HEAD_FORMS:
            raise InvalidOptionError(f"DeepLabv3 head form={form!r}; allowed: {allowed(HEAD_FORMS)}")
        self.form = form
        self.rates = tuple(rates) if rates is not None else aspp_rates(in_strides[-1])
        dropout = 0.5 if form == "torchvision" else 0.1
        self.aspp = ASPP(
            in_channels[-1],
            channels,
            self.rates,
            image_pooling=image_pooling,
            dropout=dropout,
            project_kernel=project_kernel,
        )
        self.block = ConvBNReLU(channels, channels, 3) if form == "torchvision" else None
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = self.aspp(features[-1])
        if self.block is not None:
            x = self.block(x)
        return self.classifier(x)


class DeepLabV3PlusHead(nn.Module):
    """DeepLabv3 encoder output + decoder over the stride-4 low-level feature.

    The low-level feature is reduced by a 1x1 conv to ``low_level_channels`` (48 in the paper),
    the ASPP output is upsampled 4x bilinearly (to stride 4), both are concatenated and refined
    by 3x3 convs; the model then upsamples the stride-4 logits to the input.

    Args:
        separable: depthwise-separable convs in ASPP and decoder (the paper's efficient variant).
        depthwise_relu: with ``separable``, a ReLU between each depthwise BN and its pointwise
            conv, as the released TF code's ``split_separable_conv2d`` (default); ``False`` has none.
        project_kernel: kernel of the ASPP projection (1; mmsegmentation: 3).
        decoder_convs: number of 3x3 refinement convs. The paper's decoder ablation (Table 2)
            picks two 256-channel convs, our default; one is the lighter design some libraries
            ship (segmentation_models_pytorch's DeepLabV3Plus), and about 5% faster on CPU.

    Shape: features -> logits ``(N, num_classes, H/4, W/4)``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        channels: int = 256,
        low_level_channels: int = 48,
        rates: Sequence[int] | None = None,
        separable: bool = False,
        low_level_stride: int = 4,
        decoder_convs: int = 2,
        depthwise_relu: bool = True,
        project_kernel: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(decoder_convs, int) or isinstance(decoder_convs, bool) or decoder_convs < 1:
            raise InvalidOptionError(f"decoder_convs must be a positive integer, got {decoder_convs!r}")
        self.low_index = index_of_stride(in_strides, low_level_stride, "DeepLabv3+ decoder")
        self.low_level_stride = low_level_stride
        self.rates = tuple(rates) if rates is not None else aspp_rates(in_strides[-1])
        self.aspp = ASPP(
            in_channels[-1],
            channels,
            self.rates,
            separable=separable,
            depthwise_relu=depthwise_relu,
            project_kernel=project_kernel,
        )
        self.reduce = ConvBNReLU(in_channels[self.low_index], low_level_channels, 1)
        widths = [channels + low_level_channels] + [channels] * decoder_convs
        self.refine = nn.Sequential(
            *(
                conv_bn_relu(i, o, separable=separable, depthwise_relu=depthwise_relu)
                for i, o in itertools.pairwise(widths)
            )
        )
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        low = self.reduce(features[self.low_index])
        high = F.interpolate(self.aspp(features[-1]), size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.refine(torch.cat([high, low], dim=1)))

"""Small building blocks shared by heads and backbones."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def resize(t: Tensor, size: Sequence[int], align_corners: bool = False) -> Tensor:
    """``t`` resized bilinearly to ``size``; ``t`` itself when it has that size already.

    ``align_corners=True`` maps the corner pixels onto each other (the sampling of Caffe's
    ``Interp`` layer, used by the PSPNet, EncNet, HRNet and TF DeepLab releases); ``False``
    treats pixels as areas (torchvision, mmsegmentation).

    Shape:
        ``(N, C, h, w)`` -> ``(N, C, *size)``.
    """
    # An export records one branch; the resize (exact at the same size) keeps it valid at every size.
    exporting = torch.jit.is_tracing() or torch.compiler.is_exporting()  # first: no shape guard then
    if not exporting and tuple(t.shape[-2:]) == tuple(size):
        return t
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=align_corners)


def same_layout(t: Tensor, like: Tensor) -> Tensor:
    """``t`` in ``like``'s memory layout (channels-last or not).

    Ops on ``(N, C, 1, 1)`` maps and matmul-then-view results come back NCHW even in a
    channels-last network; one such branch in a ``torch.cat`` turns every layer after it NCHW,
    with a layout copy per conv in the backward pass (PSPNet's train step lost 10-25% to this).
    """
    if like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        return t.contiguous(memory_format=torch.channels_last)
    return t


class ConvBNReLU(nn.Sequential):
    """``Conv2d(bias=False) -> BatchNorm2d -> ReLU`` with "same" padding for odd kernels.

    Shape:
        ``(N, in_ch, H, W) -> (N, out_ch, H / stride, W / stride)``.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation, groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise-separable conv (DeepLabv3+, https://arxiv.org/abs/1802.02611): a depthwise 3x3
    conv with BN (and ReLU), then a pointwise 1x1 conv-BN-ReLU.

    ``depthwise_relu=True`` is the released code's ``split_separable_conv2d``
    (tensorflow/models ``research/deeplab/core/utils.py``: the depthwise conv runs under the same
    BN-and-ReLU arg scope as every other conv); ``False`` goes straight from the depthwise BN to
    the pointwise conv. The ReLU has no parameters: the state-dict keys are the same either way.

    Shape:
        ``(N, in_ch, H, W) -> (N, out_ch, H, W)``.
    """

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1, depthwise_relu: bool = True) -> None:
        super().__init__(
            nn.Conv2d(in_ch, in_ch, 3, 1, dilation, dilation, groups=in_ch, bias=False),
            nn.BatchNorm2d(in_ch),
            ConvBNReLU(in_ch, out_ch, kernel_size=1),
        )
        self.depthwise_relu = depthwise_relu

    def forward(self, x: Tensor) -> Tensor:
        # Applied here rather than as a module so that the keys (0: depthwise conv, 1: its BN,
        # 2: pointwise) do not depend on the option.
        x = self[1](self[0](x))
        if self.depthwise_relu:
            x = torch.relu(x)
        return self[2](x)


def conv_bn_relu(
    in_ch: int, out_ch: int, dilation: int = 1, separable: bool = False, depthwise_relu: bool = True
) -> nn.Module:
    """A 3x3 conv block, plain or depthwise-separable (``depthwise_relu``: see :class:`SeparableConvBNReLU`)."""
    if separable:
        return SeparableConvBNReLU(in_ch, out_ch, dilation, depthwise_relu)
    return ConvBNReLU(in_ch, out_ch, 3, dilation=dilation)

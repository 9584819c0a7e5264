"""The naive all-convolutional segmenter: the baseline a segmentation lecture starts from.

A stack of 3x3 convolutions that never downsample, then a per-pixel 1x1 classifier. Every layer
runs at full resolution, so it is expensive, and each 3x3 layer widens the receptive field by only
2 pixels: with ``depth`` layers a pixel's label depends on a ``(2 * depth + 1)``-pixel square
(17x17 for the default 8), far too little context to tell a road from a wall. Downsampling
(FCN, U-Net) or dilation (DeepLab) are the answers the later networks give.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from semseg.errors import InvalidOptionError
from semseg.models.layers import ConvBNReLU
from semseg.models.registry import register_model
from semseg.models.segmentor import SegmentationModel


class NaiveConvStack(nn.Module):
    """``depth`` 3x3 conv-BN-ReLU layers of ``width`` channels, stride 1 throughout.

    Receptive field: ``2 * depth + 1`` pixels (see :attr:`receptive_field`).

    Shape:
        ``(N, in_channels, H, W)`` -> ``[(N, width, H, W)]`` (one feature at stride 1).
    """

    def __init__(self, in_channels: int = 3, width: int = 64, depth: int = 8) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise InvalidOptionError(f"naive_convnet needs depth >= 1 and width >= 1, got {depth}, {width}")
        self.layers = nn.Sequential(*[ConvBNReLU(in_channels if i == 0 else width, width) for i in range(depth)])
        self.receptive_field = 2 * depth + 1
        self.out_channels, self.strides = (width,), (1,)

    def forward(self, x: Tensor) -> list[Tensor]:
        return [self.layers(x)]


class PixelClassifier(nn.Module):
    """A 1x1 convolution: each pixel is classified from its own feature vector alone.

    Shape:
        ``[(N, C_in, H, W)]`` -> ``(N, num_classes, H, W)``.
    """

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Conv2d(in_channels[-1], num_classes, 1)
        self.stride = in_strides[-1]

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return self.classifier(features[-1])


@register_model
def naive_convnet(*, num_classes: int = 21, width: int = 64, depth: int = 8, in_channels: int = 3) -> SegmentationModel:
    """``depth`` full-resolution 3x3 conv-BN-ReLU layers and a 1x1 classifier; receptive field
    ``2 * depth + 1`` pixels (17 by default)."""
    backbone = NaiveConvStack(in_channels, width, depth)
    head = PixelClassifier(backbone.out_channels, backbone.strides, num_classes)
    return SegmentationModel(backbone, head, num_classes=num_classes)

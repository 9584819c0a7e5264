"""Pyramid Pooling Module and PSPNet head (Zhao et al., https://arxiv.org/abs/1612.01105, Sec. 3.2).

The last (stride 8) feature is average-pooled to ``b x b`` bins for each ``b`` in ``bins``
(1, 2, 3, 6 in the paper), each pooled map is reduced by a 1x1 conv to ``in_ch / len(bins)``
channels (BN, ReLU), upsampled bilinearly to the feature size and concatenated with the feature
itself; a 3x3 conv-BN-ReLU and a 1x1 classifier follow.

``bottleneck_kernel=1`` swaps the 3x3 conv after the concatenation for a 1x1 conv, as
segmentation_models_pytorch's PSPNet does: about 17M fewer parameters (on a 2048-channel
ResNet) and about a ninth of that layer's multiply-adds, at some cost in context mixing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semseg.errors import InvalidOptionError
from semseg.models.layers import ConvBNReLU, same_layout


class PyramidPooling(nn.Module):
    """Shape: ``(N, in_ch, h, w) -> (N, in_ch + len(bins) * reduction, h, w)``.

    Args:
        bins: output sizes of the adaptive average pools.
        reduction: channels of each pooled branch after its 1x1 conv; default ``in_ch // len(bins)``
            (the paper's 1/N rule, which keeps the pooled part as wide as the input).
        align_corners: of the upsampling of the pooled maps (``True`` in hszhao/semseg).
    """

    def __init__(
        self, in_ch: int, bins: Sequence[int] = (1, 2, 3, 6), reduction: int | None = None, align_corners: bool = False
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        bins = tuple(bins)
        if not bins or not all(isinstance(b, int) and b >= 1 for b in bins):
            raise InvalidOptionError(f"bins={bins!r} must be positive integers, e.g. (1, 2, 3, 6)")
        self.bins = bins
        self.reduction = reduction or in_ch // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), ConvBNReLU(in_ch, self.reduction, 1)) for b in bins
        )
        self.out_channels = in_ch + len(bins) * self.reduction

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        pooled = [
            same_layout(F.interpolate(stage(x), size=size, mode="bilinear", align_corners=self.align_corners), x)
            for stage in self.stages
        ]
        return torch.cat([x, *pooled], dim=1)


class PSPHead(nn.Module):
    """PPM on the last feature, 3x3 conv-BN-ReLU (512 channels), dropout 0.1, 1x1 classifier.

    Args:
        bins: pooled grid sizes (1, 2, 3, 6 in the paper).
        bottleneck_kernel: 3 (paper) or 1 (lighter; see the module docstring).
        align_corners: of the pyramid's upsampling (``True`` in the released code).

    Shape: last feature ``(N, C, H/8, W/8)`` -> logits ``(N, num_classes, H/8, W/8)``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        bins: Sequence[int] = (1, 2, 3, 6),
        channels: int = 512,
        dropout: float = 0.1,
        bottleneck_kernel: int = 3,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        if bottleneck_kernel not in (1, 3):
            raise InvalidOptionError(f"bottleneck_kernel={bottleneck_kernel!r}; allowed: 1, 3")
        self.ppm = PyramidPooling(in_channels[-1], bins, align_corners=align_corners)
        self.block = ConvBNReLU(self.ppm.out_channels, channels, bottleneck_kernel)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return self.classifier(self.dropout(self.block(self.ppm(features[-1]))))

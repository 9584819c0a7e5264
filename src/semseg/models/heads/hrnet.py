"""HRNetV2 segmentation head (Wang et al., https://arxiv.org/abs/1908.07919, Sec. 3): every branch
is upsampled bilinearly to the highest resolution, all are concatenated, mixed by a 1x1
conv-BN-ReLU (as wide as the concatenation) and classified by a 1x1 conv."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semseg.models.layers import ConvBNReLU


class HRNetV2Head(nn.Module):
    """Shape: features ``[(N, C_i, h_i, w_i)]`` (highest resolution first) -> logits
    ``(N, num_classes, h_0, w_0)`` at the stride of the first feature (4 for HRNet).

    Args:
        channels: width of the mixing conv; default the concatenated width ``sum(in_channels)``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        channels: int | None = None,
    ) -> None:
        super().__init__()
        total = sum(in_channels)
        self.mix = ConvBNReLU(total, channels or total, 1)
        self.classifier = nn.Conv2d(channels or total, num_classes, 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        size = features[0].shape[-2:]
        ups = [features[0]]
        ups += [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in features[1:]]
        return self.classifier(self.mix(torch.cat(ups, dim=1)))

"""HRNetV2 segmentation head (Wang et al., https://arxiv.org/abs/1908.07919, Sec. 3): every branch
is upsampled bilinearly to the highest resolution, all are concatenated, mixed by a 1x1
conv-BN-ReLU (as wide as the concatenation) and classified by a 1x1 conv.

As the released code (HRNet/HRNet-Semantic-Segmentation ``lib/models/seg_hrnet.py``,
``last_layer``), the mixing conv has a bias (``bias=True``), which its checkpoints hold; its
upsampling is ``align_corners=False`` (``MODEL.ALIGN_CORNERS: False`` in its experiment configs)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class HRNetV2Head(nn.Module):
    """Shape: features ``[(N, C_i, h_i, w_i)]`` (highest resolution first) -> logits
    ``(N, num_classes, h_0, w_0)`` at the stride of the first feature (4 for HRNet).

    Args:
        channels: width of the mixing conv; default the concatenated width ``sum(in_channels)``.
        bias: the mixing 1x1 conv has a bias (the release) although BN follows it.
        align_corners: of the branches' bilinear upsampling.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        channels: int | None = None,
        bias: bool = True,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        total = sum(in_channels)
        width = channels or total
        self.align_corners = align_corners
        # Keys as ConvBNReLU's (mix.0 conv, mix.1 BN), plus mix.0.bias with ``bias``.
        self.mix = nn.Sequential(nn.Conv2d(total, width, 1, bias=bias), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        size = features[0].shape[-2:]
        ups = [features[0]]
        ups += [F.interpolate(f, size=size, mode="bilinear", align_corners=self.align_corners) for f in features[1:]]
        return self.classifier(self.mix(torch.cat(ups, dim=1)))

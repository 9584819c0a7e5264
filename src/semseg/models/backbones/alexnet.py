"""The "repurposed AlexNet" of FCN (Long et al., https://arxiv.org/abs/1411.4038, Table 1): Caffe's
reference AlexNet (Krizhevsky et al., 2012, as CaffeNet: pool before LRN, two-group conv2/4/5)
with ``fc6``/``fc7`` turned into 6x6 and 1x1 convolutions and ``conv1`` padded by 100 pixels.

This is the paper's network, not torchvision's single-tower AlexNet (64/192 channels, no LRN),
so torchvision's ImageNet file does not fit it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from semseg.errors import InvalidOptionError
from semseg.models.coords import IDENTITY, CoordMap, through_all


class CaffeAlexNet(nn.Module):
    """AlexNet backbone for FCN-AlexNet.

    Args:
        output_stride, multi_grid: accepted for symmetry with other backbones; must be 32 and ``None``.
        with_input: return the input image itself first (3 channels, stride 1), for FCN's final
            crop to the input size.

    Shape:
        ``(N, 3, H, W)`` -> (the input, with ``with_input``, then) outputs of ``pool1``, ``pool2``,
        ``pool5`` and ``fc7`` with channels ``(96, 256, 256, 4096)`` at nominal strides
        ``(8, 16, 32, 32)``; ``self.coords`` holds their coordinate maps (``conv1``'s pad of 100
        shifts them).
    """

    def __init__(self, output_stride: int | None = None, multi_grid: object = None, with_input: bool = False) -> None:
        super().__init__()
        if output_stride not in (None, 32) or multi_grid is not None:
            raise InvalidOptionError("alexnet has output_stride 32 only and no multi_grid")
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731  (Caffe rounds pooled sizes up)
        lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4, padding=100), relu(), pool(), lrn(),  # conv1, pool1, norm1
            nn.Conv2d(96, 256, 5, padding=2, groups=2), relu(), pool(), lrn(),  # conv2, pool2, norm2
            nn.Conv2d(256, 384, 3, padding=1), relu(),  # conv3
            nn.Conv2d(384, 384, 3, padding=1, groups=2), relu(),  # conv4
            nn.Conv2d(384, 256, 3, padding=1, groups=2), relu(), pool(),  # conv5, pool5
        )  # fmt: skip
        self._taps = (2, 6, 14)  # indices of pool1, pool2, pool5
        self.fc6 = nn.Conv2d(256, 4096, 6)
        self.fc7 = nn.Conv2d(4096, 4096, 1)
        self.drop6, self.drop7 = nn.Dropout2d(0.5), nn.Dropout2d(0.5)
        self.with_input = with_input
        self.out_channels = (3, 96, 256, 256, 4096) if with_input else (96, 256, 256, 4096)
        self.strides = (1, 8, 16, 32, 32) if with_input else (8, 16, 32, 32)
        maps: list[CoordMap] = [IDENTITY] if with_input else []
        cmap, start = IDENTITY, 0
        for end in self._taps:
            cmap = through_all(cmap, self.features[start : end + 1])
            maps.append(cmap)
            start = end + 1
        maps.append(through_all(cmap, [self.fc6, self.fc7]))
        self.coords = tuple(maps)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = [x] if self.with_input else []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._taps:
                feats.append(x)
        x = self.drop6(torch.relu(self.fc6(x)))
        feats.append(self.drop7(torch.relu(self.fc7(x))))
        return feats

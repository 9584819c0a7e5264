"""HRNet backbone (Sun et al., https://arxiv.org/abs/1902.09212; HRNetV2 for segmentation,
Wang et al., https://arxiv.org/abs/1908.07919).

A stem of two stride-2 3x3 convs brings the input to 1/4; stage 1 is four bottlenecks at 1/4.
Each later stage adds a branch at half the resolution of the previous lowest one (1/8, 1/16,
1/32) with double the channels (``W, 2W, 4W, 8W``), and is made of modules in which every branch
runs four basic blocks and then all branches exchange information (multi-resolution fusion):
branch ``i`` receives the sum of every branch ``j`` brought to its resolution and width
(``j > i``: 1x1 conv-BN then bilinear upsampling; ``j < i``: ``i - j`` stride-2 3x3 convs).
Modules per stage: 1, 1, 4, 3 (the same for W18, W32 and W48).

Module names follow the reference implementation (``conv1``, ``layer1``, ``transition1``,
``stage2``, ...) so that converted ImageNet checkpoints can be mapped onto it key for key.
Resolutions are carried by size (not by factors), so any input size works without padding:
branch ``k`` has ``ceil(H / 2**(k+2))`` rows, which both the stride-2 convs and the resizes
agree on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from semseg.errors import InvalidOptionError, allowed
from semseg.models.backbones.resnet import BasicBlock, Bottleneck

WIDTHS = (18, 32, 48)
# (modules, branches) of stages 2-4; every branch of every module has 4 basic blocks.
STAGES = ((1, 2), (4, 3), (3, 4))
BLOCKS_PER_BRANCH = 4


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _branch(channels: int, n_blocks: int) -> nn.Sequential:
    return nn.Sequential(*(BasicBlock(channels, channels, 1, 1, None) for _ in range(n_blocks)))


def _downsampler(in_ch: int, out_ch: int, steps: int) -> nn.Sequential:
    """``steps`` stride-2 3x3 convs: the intermediate ones keep ``in_ch`` (with ReLU), the last
    maps to ``out_ch`` without ReLU (the fusion sum is activated once, after adding)."""
    convs = [_conv_bn(in_ch, in_ch, 3, 2) for _ in range(steps - 1)]
    convs.append(_conv_bn(in_ch, out_ch, 3, 2, relu=False))
    return nn.Sequential(*convs)


class HighResolutionModule(nn.Module):
    """Parallel branches of basic blocks followed by multi-resolution fusion.

    Shape: list of ``(N, channels[i], h_i, w_i)`` -> list of the same shapes.
    """

    def __init__(self, channels: Sequence[int], n_blocks: int = BLOCKS_PER_BRANCH, align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        n = len(channels)
        self.branches = nn.ModuleList(_branch(c, n_blocks) for c in channels)
        fuse_layers = []
        for i in range(n):
            row: list[nn.Module] = []
            for j in range(n):
                if j > i:
                    row.append(_conv_bn(channels[j], channels[i], 1, relu=False))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    row.append(_downsampler(channels[j], channels[i], i - j))
            fuse_layers.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse_layers)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            size = xs[i].shape[-2:]
            y = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                z = layer(xs[j])
                if j > i:
                    z = F.interpolate(z, size=size, mode="bilinear", align_corners=self.align_corners)
                y = y + z
            out.append(self.relu(y))
        return out


class HRNet(nn.Module):
    """HRNet-W``width`` feature extractor.

    Args:
        width: channels ``W`` of the highest-resolution branch: 18, 32 or 48.
        align_corners: of the fusion's bilinear upsampling (``False`` in the official
            HRNet-Semantic-Segmentation experiments and in mmsegmentation).

    Shape:
        ``(N, 3, H, W)`` -> 4 features at strides ``(4, 8, 16, 32)`` (sizes rounded up) with
        ``out_channels = (W, 2W, 4W, 8W)``.
    """

    def __init__(self, width: int = 48, align_corners: bool = False) -> None:
        super().__init__()
        if width not in WIDTHS:
            raise InvalidOptionError(f"HRNet width={width!r}; allowed: {allowed(WIDTHS)}")
        self.width = width
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        down = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256))
        self.layer1 = nn.Sequential(
            Bottleneck(64, 64, 1, 1, down), *(Bottleneck(256, 64, 1, 1, None) for _ in range(3))
        )
        previous = [256]
        for k, (n_modules, n_branches) in enumerate(STAGES, start=1):
            channels = [width * 2**b for b in range(n_branches)]
            self.add_module(f"transition{k}", _transition(previous, channels))
            modules = (HighResolutionModule(channels, align_corners=align_corners) for _ in range(n_modules))
            self.add_module(f"stage{k + 1}", nn.Sequential(*modules))
            previous = channels
        self.out_channels = tuple(previous)
        self.strides = (4, 8, 16, 32)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for k in range(1, len(STAGES) + 1):
            transition = getattr(self, f"transition{k}")
            # Existing branches pass through (or adapt width); a new branch grows from the lowest.
            xs = [t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(transition)]
            xs = getattr(self, f"stage{k + 1}")(xs)
        return xs


def _transition(previous: Sequence[int], channels: Sequence[int]) -> nn.ModuleList:
    layers: list[nn.Module] = []
    for i, c in enumerate(channels):
        if i < len(previous):
            layers.append(nn.Identity() if previous[i] == c else _conv_bn(previous[i], c, 3))
        else:
            layers.append(nn.Sequential(_conv_bn(previous[-1], c, 3, 2)))
    return nn.ModuleList(layers)


def hrnet_backbone(
    width: int, output_stride: int = 32, multi_grid: Sequence[int] | None = None, align_corners: bool = False
) -> HRNet:
    """Factory with the :func:`~semseg.models.backbones.build_backbone` signature: HRNet keeps
    all four resolutions, so only ``output_stride=32`` and no ``multi_grid`` make sense."""
    if output_stride != 32:
        raise InvalidOptionError(
            f"hrnetv2_w{width} keeps branches at strides 4-32; output_stride={output_stride!r}, allowed: 32"
        )
    if multi_grid is not None:
        raise InvalidOptionError("multi_grid applies to ResNet backbones only; HRNet takes none")
    return HRNet(width, align_corners)

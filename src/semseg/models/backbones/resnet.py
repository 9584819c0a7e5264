"""ResNet-18/34/50/101/152 (He et al., https://arxiv.org/abs/1512.03385) written for
segmentation: dilation chosen at construction (``output_stride`` 8/16/32), multi-grid rates in
the last stage (DeepLabv3, https://arxiv.org/abs/1706.05587) and an optional deep stem (three
3x3 convs, as PSPNet's ResNet, https://arxiv.org/abs/1612.01105).

State-dict keys match torchvision's ``resnet*`` so its ImageNet weights load strictly (the
``fc`` classifier is dropped); the deep stem has its own keys and cannot take them.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from semseg.errors import InvalidOptionError
from semseg.models.backbones.base import check_multi_grid, check_output_stride, stage_plan


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, ch: int, stride: int, dilation: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 3, stride, dilation, dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: the stride (and dilation) sit on the 3x3 conv, as torchvision."""

    expansion = 4

    def __init__(self, in_ch: int, ch: int, stride: int, dilation: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.conv3 = nn.Conv2d(ch, ch * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(ch * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


DEPTHS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """Dilated ResNet backbone.

    Args:
        depth: 18, 34, 50, 101 or 152.
        output_stride: 8, 16 or 32; stages past it keep resolution and dilate instead.
        multi_grid: unit rates for the blocks of ``layer4`` (e.g. ``(1, 2, 4)``), multiplied by
            that stage's dilation; ``None`` means all 1.
        deep_stem: replace the 7x7 stem conv by three 3x3 convs (32, 32, 64 channels).

    Shape:
        ``(N, 3, H, W)`` -> features at strides ``self.strides``: stem (2), layer1 (4),
        layer2 (8), layer3, layer4 (16 or 32, capped by ``output_stride``), with
        ``self.out_channels`` channels.
    """

    def __init__(
        self,
        depth: int = 50,
        output_stride: int = 32,
        multi_grid: Sequence[int] | None = None,
        deep_stem: bool = False,
    ) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise InvalidOptionError(f"ResNet depth={depth!r}; allowed: {', '.join(map(str, DEPTHS))}")
        check_output_stride(output_stride)
        block, layers = DEPTHS[depth]
        grid = check_multi_grid(multi_grid, layers[3])
        self.depth = depth
        self.deep_stem = deep_stem
        if deep_stem:
            self.stem = nn.Sequential(
                nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                nn.Conv2d(32, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            )  # fmt: skip
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)

        plan = stage_plan(output_stride, (1, 2, 2, 2))
        self.stage_dilations = tuple(d for _, d in plan)
        in_ch, prev_dilation = 64, 1
        for i, (n_blocks, (stride, dilation)) in enumerate(zip(layers, plan, strict=True)):
            rates = [dilation * g for g in grid] if i == 3 else [dilation] * n_blocks
            # As torchvision: the first block of a newly dilated stage keeps the previous dilation
            # on its 3x3 conv (it is the one that would have strided).
            # Multi-grid, when given, sets every block of layer4 including the first (DeepLabv3).
            if stride == 1 and i > 0 and not (i == 3 and multi_grid is not None):
                rates[0] = prev_dilation
            layer, in_ch = _make_layer(block, in_ch, 64 * 2**i, n_blocks, stride, rates)
            self.add_module(f"layer{i + 1}", layer)
            prev_dilation = dilation
        exp = block.expansion
        self.out_channels = (64, 64 * exp, 128 * exp, 256 * exp, 512 * exp)
        strides, s = [2, 4], 4
        for stride, _ in plan[1:]:
            s *= stride
            strides.append(s)
        self.strides = tuple(strides)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x) if self.deep_stem else self.relu(self.bn1(self.conv1(x)))
        feats = [x]
        x = self.maxpool(x)
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
            feats.append(x)
        return feats


def _make_layer(
    block: type[nn.Module], in_ch: int, ch: int, n_blocks: int, stride: int, rates: Sequence[int]
) -> tuple[nn.Sequential, int]:
    out_ch = ch * block.expansion  # type: ignore[attr-defined]
    downsample = None
    if stride != 1 or in_ch != out_ch:
        downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
    blocks = [block(in_ch, ch, stride, rates[0], downsample)]
    blocks += [block(out_ch, ch, 1, rates[i], None) for i in range(1, n_blocks)]
    return nn.Sequential(*blocks), out_ch

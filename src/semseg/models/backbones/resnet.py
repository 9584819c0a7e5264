"""ResNet-18/34/50/101/152 (He et al., https://arxiv.org/abs/1512.03385) written for
segmentation: dilation chosen at construction (``output_stride`` 8/16/32), multi-grid rates in
the last stage (DeepLabv3, https://arxiv.org/abs/1706.05587) and the variants the segmentation
papers' released code used:

* ``deep_stem`` / ``stem_width``: three 3x3 convs (``w, w, 2w`` channels) instead of the 7x7 conv.
  ``stem_width=64`` (64-64-128) is the stem of PSPNet's (hszhao/semseg ``resnet.py``, the Caffe
  PSPNet) and EncNet's (PyTorch-Encoding ``resnet50s``) ResNets; ``stem_width=32`` (32-32-64) is
  mmsegmentation's ``ResNetV1c`` and EfficientFCN's ResNet-D.
* ``style="caffe"``: the MSRA/Caffe bottleneck, stride on the first 1x1 conv (DeepLab v2's
  released prototxt, kazuto1011/deeplab-pytorch); ``"pytorch"`` (default) puts it on the 3x3 conv.
* ``dilate_first_block``: the first block of a dilated stage also gets the stage's rate (hszhao/
  semseg, DeepLab v2); otherwise it keeps the previous stage's rate (torchvision, PyTorch-Encoding,
  mmsegmentation's ``contract_dilation``).
* ``avg_down``: ResNet-D shortcut (Bag of Tricks, https://arxiv.org/abs/1812.01187): 2x2 average
  pool, then a stride-1 1x1 conv (EfficientFCN's released backbone).
* ``stem_pool_ceil``: the stem's max-pool rounds up (Caffe pooling, kazuto1011/deeplab-pytorch).

State-dict keys match torchvision's ``resnet*`` so its ImageNet weights load strictly (the
``fc`` classifier is dropped); the deep stem has its own keys (``stem.*``) and cannot take them,
and ``avg_down`` moves each shortcut conv from ``downsample.0`` to ``downsample.1``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from semseg.errors import InvalidOptionError, allowed
from semseg.models.backbones.base import check_multi_grid, check_output_stride, stage_plan


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self,
        in_ch: int,
        ch: int,
        stride: int,
        dilation: int,
        downsample: nn.Module | None,
        style: str = "pytorch",
    ) -> None:
        super().__init__()
        # A basic block has no 1x1 conv: both styles put the stride on its first 3x3 conv.
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
    """Bottleneck 1x1 -> 3x3 (dilated) -> 1x1. ``style="pytorch"`` (ResNet v1.5, torchvision) puts
    the stride on the 3x3 conv; ``style="caffe"`` (the original MSRA ResNet) on the first 1x1."""

    expansion = 4

    def __init__(
        self,
        in_ch: int,
        ch: int,
        stride: int,
        dilation: int,
        downsample: nn.Module | None,
        style: str = "pytorch",
    ) -> None:
        super().__init__()
        stride1, stride3 = (stride, 1) if style == "caffe" else (1, stride)
        self.conv1 = nn.Conv2d(in_ch, ch, 1, stride1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, stride3, dilation, dilation, bias=False)
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
STYLES = ("pytorch", "caffe")


class ResNet(nn.Module):
    """Dilated ResNet backbone.

    Args:
        depth: 18, 34, 50, 101 or 152.
        output_stride: 8, 16 or 32; stages past it keep resolution and dilate instead.
        multi_grid: unit rates for the blocks of ``layer4`` (e.g. ``(1, 2, 4)``), multiplied by
            that stage's dilation; ``None`` means all 1.
        deep_stem: replace the 7x7 stem conv by three 3x3 convs (``stem_width``, ``stem_width``,
            ``2 * stem_width`` channels).
        stem_width: see ``deep_stem``; 32 (mmsegmentation's ResNetV1c) or 64 (PSPNet, EncNet).
        style: ``"pytorch"`` (stride on the bottleneck's 3x3 conv) or ``"caffe"`` (on its first 1x1).
        dilate_first_block: give the first block of a dilated stage the stage's rate too.
        avg_down: ResNet-D shortcuts (average pool, then a stride-1 1x1 conv).
        stem_pool_ceil: the stem's max-pool rounds its output size up (Caffe).

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
        stem_width: int = 32,
        style: str = "pytorch",
        dilate_first_block: bool = False,
        avg_down: bool = False,
        stem_pool_ceil: bool = False,
    ) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise InvalidOptionError(f"ResNet depth={depth!r}; allowed: {', '.join(map(str, DEPTHS))}")
        if style not in STYLES:
            raise InvalidOptionError(f"ResNet style={style!r}; allowed: {allowed(STYLES)}")
        if isinstance(stem_width, bool) or not isinstance(stem_width, int) or stem_width < 1:
            raise InvalidOptionError(f"stem_width must be a positive integer (32 or 64), got {stem_width!r}")
        check_output_stride(output_stride)
        block, layers = DEPTHS[depth]
        grid = check_multi_grid(multi_grid, layers[3])
        self.depth = depth
        self.deep_stem = deep_stem
        self.style, self.dilate_first_block, self.avg_down = style, dilate_first_block, avg_down
        w = stem_width
        stem_out = 2 * w if deep_stem else 64
        if deep_stem:
            self.stem = nn.Sequential(
                nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                nn.Conv2d(w, 2 * w, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True),
            )  # fmt: skip
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1, ceil_mode=stem_pool_ceil)

        plan = stage_plan(output_stride, (1, 2, 2, 2))
        self.stage_dilations = tuple(d for _, d in plan)
        in_ch, prev_dilation = stem_out, 1
        for i, (n_blocks, (stride, dilation)) in enumerate(zip(layers, plan, strict=True)):
            rates = [dilation * g for g in grid] if i == 3 else [dilation] * n_blocks
            # As torchvision: the first block of a newly dilated stage keeps the previous dilation
            # on its 3x3 conv (it is the one that would have strided); dilate_first_block gives it
            # the stage's rate, as hszhao/semseg and DeepLab v2's prototxt do.
            # Multi-grid, when given, sets every block of layer4 including the first (DeepLabv3).
            if stride == 1 and i > 0 and not (i == 3 and multi_grid is not None) and not dilate_first_block:
                rates[0] = prev_dilation
            layer, in_ch = _make_layer(block, in_ch, 64 * 2**i, n_blocks, stride, rates, style, avg_down)
            self.add_module(f"layer{i + 1}", layer)
            prev_dilation = dilation
        exp = block.expansion
        self.out_channels = (stem_out, 64 * exp, 128 * exp, 256 * exp, 512 * exp)
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
    block: type[nn.Module],
    in_ch: int,
    ch: int,
    n_blocks: int,
    stride: int,
    rates: Sequence[int],
    style: str = "pytorch",
    avg_down: bool = False,
) -> tuple[nn.Sequential, int]:
    out_ch = ch * block.expansion  # type: ignore[attr-defined]
    downsample: nn.Module | None = None
    if stride != 1 or in_ch != out_ch:
        if avg_down:
            # ResNet-D: the pool does the striding, so the 1x1 conv sees every input pixel.
            pool: nn.Module = (
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False) if stride != 1 else nn.Identity()
            )
            conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
            downsample = nn.Sequential(pool, conv, nn.BatchNorm2d(out_ch))
        else:
            downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
    blocks = [block(in_ch, ch, stride, rates[0], downsample, style)]
    blocks += [block(out_ch, ch, 1, rates[i], None, style) for i in range(1, n_blocks)]
    return nn.Sequential(*blocks), out_ch

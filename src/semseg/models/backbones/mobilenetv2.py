"""MobileNetV2 (Sandler et al., https://arxiv.org/abs/1801.04381) as a light backbone.

Same layers and state-dict keys as torchvision's ``mobilenet_v2`` (``features.0`` ...
``features.18``), so its ImageNet weights load strictly (the classifier is dropped), with the
stride/dilation of the late inverted-residual stages set at construction for
``output_stride`` 8 or 16 (DeepLabv3+ uses 16).

``final_conv=False`` ends the network at the 320-channel inverted-residual block, without the
1280-channel 1x1 conv: the encoder of DeepLabv3+ on MobileNetV2 (tensorflow/models
``research/deeplab/core/feature_extractor.py`` stops ``mobilenet_v2`` at ``layer_18``). ImageNet
files then load with their ``features.18`` (that conv) left out.
"""

from __future__ import annotations

from torch import Tensor, nn

from semseg.models.backbones.base import check_output_stride


class ConvBNReLU6(nn.Sequential):
    def __init__(
        self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1
    ) -> None:
        pad = dilation * (kernel - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, pad, dilation, groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise 3x3 (stride, dilation) -> linear 1x1 projection, residual if shapes match."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int, dilation: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, dilation=dilation, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


# (expansion t, channels c, repeats n, stride s) from Table 2 of the paper.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2(nn.Module):
    """MobileNetV2 feature extractor.

    Args:
        output_stride: 8, 16 or 32.
        final_conv: keep the 1280-channel 1x1 conv after the last block (torchvision's classifier
            trunk); ``False`` ends at the 320-channel block (DeepLabv3+'s encoder).

    Shape:
        ``(N, 3, H, W)`` -> 5 features at strides ``(2, 4, 8, 16, 32)`` (capped by
        ``output_stride``) with ``out_channels = (16, 24, 32, 96, 1280)`` (320 last without
        ``final_conv``).
    """

    def __init__(self, output_stride: int = 32, final_conv: bool = True) -> None:
        super().__init__()
        check_output_stride(output_stride)
        features: list[nn.Module] = [ConvBNReLU6(3, 32, stride=2)]
        in_ch, current, dilation = 32, 2, 1
        # Indices into ``features`` whose outputs are returned (last block at each stride).
        self.return_indices: list[int] = []
        strides: list[int] = []
        for t, c, n, s in SETTINGS:
            if s == 2 and features:
                self.return_indices.append(len(features) - 1)
                strides.append(current)
            for i in range(n):
                stride = s if i == 0 else 1
                block_dilation = dilation
                if stride == 2 and current * 2 > output_stride:
                    stride, dilation = 1, dilation * 2
                    block_dilation = dilation // 2  # first block keeps the previous rate
                elif stride == 2:
                    current *= 2
                features.append(InvertedResidual(in_ch, c, stride, t, block_dilation))
                in_ch = c
        self.final_conv = final_conv
        # Keys of an ImageNet file that this network does not have (see weights.py).
        self.skipped_weight_prefixes: tuple[str, ...] = ()
        if final_conv:
            features.append(ConvBNReLU6(in_ch, 1280, kernel=1))
        else:
            self.skipped_weight_prefixes = (f"features.{len(features)}.",)
        self.return_indices.append(len(features) - 1)
        strides.append(current)
        self.features = nn.Sequential(*features)
        self.out_channels = (16, 24, 32, 96, 1280 if final_conv else in_ch)
        self.strides = tuple(strides)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        wanted = set(self.return_indices)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                feats.append(x)
        return feats

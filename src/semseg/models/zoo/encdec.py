"""Encoder-decoder on VGG-16: SegNet (Badrinarayanan, Kendall and Cipolla, TPAMI 2017,
https://arxiv.org/abs/1511.00561, Fig. 2) and its two simpler cousins.

The encoder is VGG-16's 13 convolutions, each with batch norm and ReLU, in 5 stages ending in a
2x2 max-pool (torchvision's ``vgg16_bn`` ``features`` keys, so its ImageNet file fits). The
decoder mirrors it stage by stage: a 2x upsampling, then convolutions with batch norm and ReLU
that shrink the channels back (512 -> 512 -> 256 -> 128 -> 64), and a 3x3 convolution that
classifies at full resolution. How the decoder upsamples is the option:

* ``upsample="unpool"``: SegNet: max-unpooling with the encoder's pooling indices, which puts
  each value back where its maximum came from (no parameters; sharp boundaries);
* ``upsample="deconv"``: a learned 4x4 stride-2 transposed convolution per stage, initialised to
  bilinear interpolation (the learned upsampling of FCN and DeconvNet);
* ``upsample="bilinear"``: fixed bilinear interpolation.

The encoder's features are the input image, the five pools' argmax indices and the last pooled
map: the decoder unpools with the indices and takes each stage's output size from the map before
the matching pool (the input for ``pool1``, the previous pool's output for the others).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from semseg.errors import InvalidOptionError, allowed
from semseg.models.coords import init_bilinear_
from semseg.models.registry import register_model
from semseg.models.segmentor import SegmentationModel

UPSAMPLES = ("unpool", "deconv", "bilinear")
ENCODER = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
DECODER = ((512, 512, 512), (512, 512, 256), (256, 256, 128), (128, 64), (64,))  # deepest stage first


def _conv_bn_relu(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]


class SegNetEncoder(nn.Module):
    """VGG-16-BN convolutions; the pools also return their argmax indices.

    Shape:
        ``(N, 3, H, W)`` -> ``[x, indices of pool1 ... pool5, (N, 512, H / 32, W / 32)]``: the
        input, the ``int64`` indices ``(N, C_k, H / 2^k, W / 2^k)`` and the last pooled map, with
        ``self.out_channels`` and ``self.strides``.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for stage in ENCODER:
            for ch in stage:
                layers += _conv_bn_relu(in_ch, ch)
                in_ch = ch
            layers.append(nn.MaxPool2d(2, 2, return_indices=True))
        self.features = nn.Sequential(*layers)
        pooled = [stage[-1] for stage in ENCODER]
        self.out_channels = (3, *pooled, pooled[-1])
        self.strides = (1, 2, 4, 8, 16, 32, 32)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = [x]
        for layer in self.features:
            if isinstance(layer, nn.MaxPool2d):
                x, idx = layer(x)
                feats.append(idx)
            else:
                x = layer(x)
        return [*feats, x]


class DecoderStage(nn.Module):
    """Upsampling to the size before the matching encoder pool, then conv-BN-ReLU layers.

    Shape:
        ``(N, in_ch, h, w)`` -> ``(N, widths[-1], H_pool_input, W_pool_input)``.
    """

    def __init__(self, in_ch: int, widths: tuple[int, ...], upsample: str) -> None:
        super().__init__()
        self.upsample = upsample
        self.up = None
        if upsample == "deconv":
            self.up = nn.ConvTranspose2d(in_ch, in_ch, 4, 2, 1, bias=False)
            init_bilinear_(self.up)
        layers: list[nn.Module] = []
        for ch in widths:
            layers += _conv_bn_relu(in_ch, ch)
            in_ch = ch
        self.convs = nn.Sequential(*layers)

    def forward(self, x: Tensor, indices: Tensor, size: tuple[int, int]) -> Tensor:
        if self.upsample == "unpool":
            x = F.max_unpool2d(x, indices, 2, 2, output_size=size)
        elif self.up is not None:
            x = self.up(x, output_size=size)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.convs(x)


class SegNetDecoder(nn.Module):
    """Five decoder stages and a 3x3 classifier (SegNet's ``conv1_1_D``).

    Shape:
        :class:`SegNetEncoder`'s features (input, pool indices, ``(N, 512, H / 32, W / 32)``) ->
        ``(N, num_classes, H, W)``.
    """

    def __init__(self, num_classes: int, upsample: str) -> None:
        super().__init__()
        if upsample not in UPSAMPLES:
            raise InvalidOptionError(f"upsample={upsample!r}; allowed: {allowed(UPSAMPLES)}")
        self.stages = nn.ModuleList()
        in_ch = 512
        for widths in DECODER:
            self.stages.append(DecoderStage(in_ch, widths, upsample))
            in_ch = widths[-1]
        self.classifier = nn.Conv2d(in_ch, num_classes, 3, padding=1)
        self.stride = 1

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        image, *indices, x = features
        # Pool k ran on a map of pool k-1's output size (same-padded convs in between); pool 1 on the input.
        sizes = [image.shape[-2:], *(idx.shape[-2:] for idx in indices[:-1])]
        for stage, idx, size in zip(self.stages, reversed(indices), reversed(sizes), strict=True):
            x = stage(x, idx, (size[0], size[1]))
        return self.classifier(x)


@register_model
def encdec_vgg16(*, num_classes: int = 21, upsample: str = "unpool") -> SegmentationModel:
    """VGG-16-BN encoder-decoder; ``upsample="unpool"`` (default) is SegNet, ``"deconv"`` learns
    its upsampling, ``"bilinear"`` interpolates. Inputs of at least 32x32."""
    head = SegNetDecoder(num_classes, upsample)
    return SegmentationModel(SegNetEncoder(), head, num_classes=num_classes)

"""U-Net's contracting path and expanding path (Ronneberger et al., MICCAI 2015,
https://arxiv.org/abs/1505.04597, Fig. 1).

The contracting path repeats two 3x3 convolutions with ReLU and a 2x2 max-pool, doubling the
channels (64 ... 1024). The expanding path repeats a 2x2 "up-convolution" that halves the channels,
a concatenation with the contracting path's map of the same level, and two 3x3 convolutions; a
1x1 convolution classifies. With ``padding="valid"`` (the paper) every 3x3 convolution loses a
border pixel, so the skip is centre-cropped before the concatenation ("crop and copy") and the
output is 184 pixels smaller than the input; with ``padding="same"`` nothing is cropped.

As the released Caffe model (``phseg_v5-train.prototxt`` of the U-Net release: ``dropout_d3c``,
``dropout_d4c``, ``relu_u3a`` ...), element-wise dropout 0.5 follows the last two levels of the
contracting path (in place: the next pool and the skip read the dropped-out map), and each
up-convolution is followed by a ReLU. The paper's text mentions only "drop-out layers at the end
of the contracting path" and no activation after the up-convolution: ``dropout_levels=1`` and
``upconv_relu=False`` give that form.

:class:`UNetDecoder` is the expanding path over any backbone whose features come one per stride,
each twice the previous (e.g. ResNet's 2, 4, 8, 16, 32); levels below the finest feature's stride
are reached by blocks without a skip.

mmsegmentation's U-Net (``unet-s5-d16``) is this network with batch norm, no drop-out and its
``InterpConv`` up-sampling (``upsample="interp"``: 2x bilinear, then a 1x1 conv-BN-ReLU to the
block's width), used as a backbone (:class:`UNetBody`) whose expanding-path maps feed an FCN
head and an FCN auxiliary head.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semseg.errors import InvalidOptionError, allowed

PADDINGS = ("same", "valid")
UPSAMPLES = ("deconv", "bilinear", "interp")


def double_conv(in_ch: int, out_ch: int, padding: str, batch_norm: bool, kernel_size: int = 3) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by (batch norm and) ReLU; ``kernel_size=1``: one 1x1."""
    pad = 1 if padding == "same" and kernel_size == 3 else 0
    layers: list[nn.Module] = []
    for c_in in (in_ch, out_ch) if kernel_size == 3 else (in_ch,):
        layers.append(nn.Conv2d(c_in, out_ch, kernel_size, padding=pad, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_ch))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise InvalidOptionError(f"{name}={value!r}; allowed: {allowed(choices)}")


class UNetEncoder(nn.Module):
    """The contracting path.

    Args:
        in_channels: image channels (1 in the paper's grey-scale microscopy).
        widths: channels per level; each level after the first starts with a 2x2 max-pool.
        padding: ``"same"`` or ``"valid"`` (the paper: unpadded convolutions).
        batch_norm: batch norm after each convolution (not in the paper).
        dropout: element-wise drop-out rate (the paper's "implicit data augmentation").
        dropout_levels: how many of the deepest levels end in drop-out (2 in the released model).

    Shape:
        ``(N, in_channels, H, W)`` -> one map per level, channels ``widths``, nominal strides
        ``1, 2, 4, ...`` (smaller by the lost borders with ``"valid"``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (64, 128, 256, 512, 1024),
        padding: str = "same",
        batch_norm: bool = False,
        dropout: float = 0.5,
        dropout_levels: int = 2,
    ) -> None:
        super().__init__()
        check_choice("padding", padding, PADDINGS)
        if (
            isinstance(dropout_levels, bool)
            or not isinstance(dropout_levels, int)
            or not 0 <= dropout_levels <= len(widths)
        ):
            raise InvalidOptionError(
                f"dropout_levels must be an integer from 0 to {len(widths)}, got {dropout_levels!r}"
            )
        self.dropout_levels = dropout_levels
        self.stages = nn.ModuleList()
        for i, w in enumerate(widths):
            self.stages.append(double_conv(in_channels if i == 0 else widths[i - 1], w, padding, batch_norm))
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout = nn.Dropout(dropout)
        self.out_channels = tuple(widths)
        self.strides = tuple(2**i for i in range(len(widths)))

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        first_dropped = len(self.stages) - self.dropout_levels
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else self.pool(x))
            if i >= first_dropped:
                x = self.dropout(x)
            feats.append(x)
        return feats


class UpBlock(nn.Module):
    """2x upsampling, concatenation with the (cropped) skip if there is one, two 3x3 convolutions.

    ``upsample``: ``"deconv"`` (the paper's 2x2 up-convolution to ``out_ch``), ``"bilinear"``
    (keeps ``in_ch``) or ``"interp"`` (bilinear, then a 1x1 conv(-BN)-ReLU to ``out_ch``,
    ``project``: mmseg's ``InterpConv`` with ``batch_norm``). The skip comes first in the
    concatenation.

    Shape:
        ``(N, in_ch, h, w)`` and skip ``(N, skip_ch, >= 2h, >= 2w)`` -> ``(N, out_ch, 2h (-4), 2w (-4))``.
    """

    def __init__(
        self,
        in_ch: int,
        skip_ch: int,
        out_ch: int,
        upsample: str,
        padding: str,
        batch_norm: bool,
        upconv_relu: bool = False,
    ) -> None:
        super().__init__()
        self.upsample, self.padding = upsample, padding
        self.upconv_relu = upconv_relu and upsample == "deconv"
        # The paper's up-convolution halves the channels; bilinear keeps them for the convs to mix;
        # "interp" halves them after the resize (a 1x1 conv-BN-ReLU does not commute with it).
        self.up = nn.ConvTranspose2d(in_ch, out_ch, 2, 2) if upsample == "deconv" else None
        self.project = double_conv(in_ch, out_ch, padding, batch_norm, 1) if upsample == "interp" else None
        up_ch = in_ch if upsample == "bilinear" else out_ch
        self.convs = double_conv(up_ch + skip_ch, out_ch, padding, batch_norm)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        size = [2 * n for n in x.shape[-2:]]
        if skip is not None and self.padding == "same":
            # Odd sizes: a floor-pooled skip has one row more than 2x, a strided conv's one fewer.
            size = list(skip.shape[-2:])
        if self.up is None:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            if self.project is not None:
                x = self.project(x)
        else:
            extra = [max(0, s - 2 * n) for s, n in zip(size, x.shape[-2:], strict=True)]
            x = self.up(x, output_size=[2 * n + e for n, e in zip(x.shape[-2:], extra, strict=True)])
            x = x[..., : size[0], : size[1]]
            if self.upconv_relu:
                x = torch.relu(x)
        if skip is not None:
            x = torch.cat([center_crop(skip, x.shape[-2:]), x], dim=1)
        return self.convs(x)


def center_crop(t: Tensor, size: Sequence[int]) -> Tensor:
    """The centre ``size`` of ``t`` (the paper's "crop" of the skip before the "copy")."""
    dh, dw = t.shape[-2] - size[0], t.shape[-1] - size[1]
    if dh < 0 or dw < 0:
        raise RuntimeError(f"skip {tuple(t.shape[-2:])} is smaller than the upsampled map {tuple(size)}")
    return t[..., dh // 2 : dh // 2 + size[0], dw // 2 : dw // 2 + size[1]]


class UNetDecoder(nn.Module):
    """The expanding path as a head.

    Args:
        in_channels, in_strides: backbone features, one per stride, each stride twice the previous.
        num_classes: output channels of the 1x1 classifier; ``None``: no classifier, only
            :meth:`levels` (the expanding path inside :class:`UNetBody`).
        decoder_channels: output channels of each block, deepest first; default: the skips'
            channels when the finest feature is at stride 1 (the paper: 512, 256, 128, 64),
            otherwise 256, 128, 64, 32, 16 (one block per halving down to stride 1).
        upsample: ``"deconv"`` (2x2 transposed convolution, the paper), ``"bilinear"`` or
            ``"interp"`` (see :class:`UpBlock`).
        padding: ``"same"`` or ``"valid"``; batch_norm: after each convolution.
        upconv_relu: a ReLU after each up-convolution (the released Caffe model).

    Shape:
        features -> ``(N, num_classes, H, W)`` at stride 1 (smaller by the borders with ``"valid"``).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int | None,
        decoder_channels: Sequence[int] | None = None,
        upsample: str = "deconv",
        padding: str = "same",
        batch_norm: bool = False,
        upconv_relu: bool = False,
    ) -> None:
        super().__init__()
        check_choice("upsample", upsample, UPSAMPLES)
        check_choice("padding", padding, PADDINGS)
        strides = tuple(in_strides)
        first = strides[0]
        if any(b != 2 * a for a, b in itertools.pairwise(strides)) or first & (first - 1):
            raise InvalidOptionError(
                "a U-Net decoder needs one backbone feature per stride, each twice the previous, e.g. "
                f"1, 2, 4, 8, 16 or 2, 4, 8, 16, 32; this backbone gives {allowed(strides)} "
                "(build it with output_stride=32)"
            )
        n_skip, n_extra = len(strides) - 1, int(math.log2(first))
        if decoder_channels is None:
            if n_extra == 0:
                decoder_channels = tuple(reversed(in_channels[:-1]))
            else:
                decoder_channels = tuple(max(16, 256 >> i) for i in range(n_skip + n_extra))
        if len(decoder_channels) != n_skip + n_extra:
            raise InvalidOptionError(
                f"decoder_channels needs {n_skip + n_extra} values (one per 2x step), got {len(decoder_channels)}"
            )
        skips = list(reversed(in_channels[:-1])) + [0] * n_extra
        self.blocks = nn.ModuleList()
        ch = in_channels[-1]
        for skip_ch, out_ch in zip(skips, decoder_channels, strict=True):
            self.blocks.append(UpBlock(ch, skip_ch, out_ch, upsample, padding, batch_norm, upconv_relu))
            ch = out_ch
        self.out_channels = tuple(decoder_channels)
        self.classifier = nn.Conv2d(ch, num_classes, 1) if num_classes is not None else None
        self.stride = 1

    def levels(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Each block's output, deepest first (channels :attr:`out_channels`)."""
        x = features[-1]
        skips = list(reversed(features[:-1]))
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
            out.append(x)
        return out

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        if self.classifier is None:
            raise RuntimeError("a UNetDecoder built without num_classes gives levels(), not logits")
        return self.classifier(self.levels(features)[-1])


class UNetBody(nn.Module):
    """Both paths as a backbone (mmseg's ``UNet`` backbone): the features are the expanding path's
    maps, finest first, then the bottom of the contracting path, so heads can read any of them
    (the main head the finest, an auxiliary head the next).

    Shape:
        ``(N, C, H, W)`` -> maps of channels :attr:`out_channels` (64, 128, 256, 512, 1024 for the
        paper's widths) at :attr:`strides` 1, 2, 4, 8, 16; ``H`` and ``W`` multiples of 16 keep
        every level exactly half the previous.
    """

    def __init__(self, encoder: UNetEncoder, decoder: UNetDecoder) -> None:
        super().__init__()
        if decoder.classifier is not None:
            raise InvalidOptionError("UNetBody takes a decoder built with num_classes=None")
        self.encoder, self.decoder = encoder, decoder
        self.out_channels = (*reversed(decoder.out_channels), encoder.out_channels[-1])
        self.strides = tuple(2**i for i in range(len(self.out_channels)))

    def forward(self, x: Tensor) -> list[Tensor]:
        features = self.encoder(x)
        return [*reversed(self.decoder.levels(features)), features[-1]]


class LevelClassifier(nn.Module):
    """The paper's 1x1 classifier on :class:`UNetBody`'s finest map (``aux_loss`` with the paper's head).

    Shape: ``features[0]`` ``(N, in_channels[0], H, W)`` -> ``(N, num_classes, H, W)``.
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Conv2d(in_channels[0], num_classes, 1)
        self.stride = 1

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return self.classifier(features[0])

"""Holistically-guided decoder of EfficientFCN (Liu et al., https://arxiv.org/abs/2008.10487).

The backbone is not dilated (output stride 32); the decoder rebuilds a semantic-rich stride-8
feature map from the last three stages:

1. *Multi-scale fusion* (Sec. 3.2): the stride-16 and stride-32 features are reduced by 1x1
   conv-BN-ReLU (to ``fuse_channels``); all three are resized to stride 32 and concatenated
   (``m32``) and to stride 8 and concatenated (``m8``).
2. *Holistic codeword generation*: from ``m32``, a 1x1 conv gives base features ``B``
   (``channels`` wide) and another gives ``num_codes`` spatial weighting maps ``A``, each
   softmax-normalised over positions; codeword ``k`` is ``sum_j softmax(A_k)_j B_j``.
3. *Codeword assembly*: from ``m8``, a 1x1 conv gives guidance ``G``; adding the global average
   of ``B`` and two 1x1 convs gives ``num_codes`` assembly coefficients per pixel; the assembled
   feature at each pixel is the coefficient-weighted sum of the codewords (scaled by
   ``1/sqrt(num_codes)`` so its magnitude does not grow with the number of codewords).
4. Assembled features concatenated with ``G``, 1x1 conv-BN-ReLU, dropout, 1x1 classifier.

The multi-scale resizes use ``align_corners=True`` by default, as the released code
(jianbo909/efficientFCN ``encoding/models/efficientFCN.py``, ``HGDModule``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from semseg.errors import InvalidOptionError
from semseg.models.heads import index_of_stride
from semseg.models.layers import ConvBNReLU, resize, same_layout


class HolisticDecoder(nn.Module):
    """Shape: ``(m32, m8)`` of ``(N, in_ch, h32, w32)``, ``(N, in_ch, h8, w8)`` ->
    ``(N, channels, h8, w8)``."""

    def __init__(self, in_ch: int, channels: int = 1024, num_codes: int = 256) -> None:
        super().__init__()
        if num_codes < 1:
            raise InvalidOptionError(f"num_codes={num_codes!r} must be a positive integer (the paper uses 256)")
        self.num_codes = num_codes
        self.base = ConvBNReLU(in_ch, channels, 1)
        self.weighting = nn.Sequential(
            ConvBNReLU(in_ch, num_codes, 1), nn.Conv2d(num_codes, num_codes, 1, bias=False), nn.BatchNorm2d(num_codes)
        )
        self.guide = ConvBNReLU(in_ch, channels, 1)
        self.coefficients = nn.Sequential(ConvBNReLU(channels, num_codes, 1), ConvBNReLU(num_codes, num_codes, 1))
        self.fuse = ConvBNReLU(2 * channels, channels, 1)

    def codewords(self, m32: Tensor) -> tuple[Tensor, Tensor]:
        """Codewords ``(N, channels, num_codes)`` and the global average of ``B`` ``(N, channels, 1, 1)``."""
        base = self.base(m32)
        weights = torch.softmax(self.weighting(m32).flatten(2), dim=-1)  # (N, K, h32*w32)
        codes = base.flatten(2) @ weights.transpose(1, 2)  # (N, channels, K)
        return codes, base.mean(dim=(2, 3), keepdim=True)

    def forward(self, m32: Tensor, m8: Tensor) -> Tensor:
        codes, base_avg = self.codewords(m32)
        guide = self.guide(m8)
        coeff = self.coefficients(guide + base_avg).flatten(2)  # (N, K, h8*w8)
        assembled = same_layout((codes @ coeff).view(guide.shape) * self.num_codes**-0.5, guide)
        return self.fuse(torch.cat([assembled, guide], dim=1))


class EfficientFCNHead(nn.Module):
    """EfficientFCN head over the stride-8, -16 and -32 features of a non-dilated backbone.

    Args:
        fuse_channels: width of the reduced stride-16/32 features (512 in the paper; the
            stride-8 feature of ResNet-50/101 is already 512 wide and is used as it is).
        channels: width of base features, guidance and output (1024 in the paper).
        num_codes: holistic codewords (256 in the paper).
        align_corners: of the multi-scale fusion's bilinear resizes.

    Shape: features -> logits ``(N, num_classes, H/8, W/8)``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        fuse_channels: int = 512,
        channels: int = 1024,
        num_codes: int = 256,
        dropout: float = 0.1,
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.indices = tuple(index_of_stride(in_strides, s, "EfficientFCN decoder") for s in (8, 16, 32))
        i8, i16, i32 = self.indices
        self.reduce16 = ConvBNReLU(in_channels[i16], fuse_channels, 1)
        self.reduce32 = ConvBNReLU(in_channels[i32], fuse_channels, 1)
        in_ch = in_channels[i8] + 2 * fuse_channels
        self.decoder = HolisticDecoder(in_ch, channels, num_codes)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        i8, i16, i32 = self.indices
        f8 = features[i8]
        f16 = self.reduce16(features[i16])
        f32 = self.reduce32(features[i32])
        s8, s32 = f8.shape[-2:], f32.shape[-2:]
        ac = self.align_corners
        m32 = torch.cat([resize(f8, s32, ac), resize(f16, s32, ac), f32], dim=1)
        m8 = torch.cat([f8, resize(f16, s8, ac), resize(f32, s8, ac)], dim=1)
        return self.classifier(self.dropout(self.decoder(m32, m8)))

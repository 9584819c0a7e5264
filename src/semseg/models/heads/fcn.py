"""The plain FCN head on a (dilated) backbone's last feature: 3x3 conv-BN-ReLU, dropout, 1x1
classifier, as torchvision's ``FCNHead``. Also the auxiliary head on stage 3 (PSPNet,
https://arxiv.org/abs/1612.01105, deep supervision with weight 0.4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from semseg.errors import InvalidOptionError
from semseg.models.layers import ConvBNReLU, same_layout


class FCNHead(nn.Module):
    """Shape: ``features[index]`` of ``(N, in_channels[index], h, w)`` -> ``(N, num_classes, h, w)``.

    Args:
        index: which backbone feature to read (``-1`` last stage; ``-2`` stage 3 for the aux head).
        channels: hidden width; default ``in_channels // 4``.
        num_convs, concat_input: mmsegmentation's ``FCNHead`` form: ``num_convs`` 3x3
            conv-BN-ReLU (``convs.i``) and, with ``concat_input``, a 3x3 conv-BN-ReLU (``concat``)
            over the input concatenated with their output. The default (one conv, no concatenation)
            is torchvision's ``FCNHead``, keys ``block``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        index: int = -1,
        channels: int | None = None,
        dropout: float = 0.1,
        num_convs: int = 1,
        concat_input: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(num_convs, bool) or not isinstance(num_convs, int) or num_convs < 1:
            raise InvalidOptionError(f"num_convs must be a positive integer, got {num_convs!r}")
        self.index = index
        in_ch = in_channels[index]
        channels = channels or max(in_ch // 4, 32)
        self.stride = in_strides[index]
        self.block: nn.Module | None = None
        self.convs: nn.Sequential | None = None
        self.concat: nn.Module | None = None
        if num_convs == 1 and not concat_input:
            self.block = ConvBNReLU(in_ch, channels, 3)
        else:
            self.convs = nn.Sequential(
                *(ConvBNReLU(in_ch if i == 0 else channels, channels, 3) for i in range(num_convs))
            )
            if concat_input:
                self.concat = ConvBNReLU(in_ch + channels, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = features[self.index]
        if self.block is not None:
            out = self.block(x)
        else:
            assert self.convs is not None
            out = self.convs(x)
            if self.concat is not None:
                out = self.concat(torch.cat([x, same_layout(out, x)], dim=1))
        return self.classifier(self.dropout(out))

"""The plain FCN head on a (dilated) backbone's last feature: 3x3 conv-BN-ReLU, dropout, 1x1
classifier, as torchvision's ``FCNHead``. Also the auxiliary head on stage 3 (PSPNet,
https://arxiv.org/abs/1612.01105, deep supervision with weight 0.4)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from semseg.models.layers import ConvBNReLU


class FCNHead(nn.Module):
    """Shape: ``features[index]`` of ``(N, in_channels[index], h, w)`` -> ``(N, num_classes, h, w)``.

    Args:
        index: which backbone feature to read (``-1`` last stage; ``-2`` stage 3 for the aux head).
        channels: hidden width; default ``in_channels // 4``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        index: int = -1,
        channels: int | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.index = index
        in_ch = in_channels[index]
        channels = channels or max(in_ch // 4, 32)
        self.stride = in_strides[index]
        self.block = ConvBNReLU(in_ch, channels, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return self.classifier(self.dropout(self.block(features[self.index])))

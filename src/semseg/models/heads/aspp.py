"""Atrous Spatial Pyramid Pooling as in DeepLabv3 (https://arxiv.org/abs/1706.05587, Sec. 3.3):
a 1x1 branch, three 3x3 atrous branches, and an image-level pooling branch, each with batch norm,
concatenated and projected by a 1x1 conv. Rates are (6, 12, 18) at output stride 16 and doubled
at output stride 8."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semseg.errors import InvalidOptionError
from semseg.models.layers import ConvBNReLU, conv_bn_relu, same_layout


def aspp_rates(output_stride: int) -> tuple[int, int, int]:
    """The paper's rates for an output stride: 16 -> (6, 12, 18), 8 -> (12, 24, 36)."""
    if output_stride not in (8, 16, 32):
        raise InvalidOptionError(f"output_stride={output_stride}; allowed: 8, 16, 32")
    scale = 16 // output_stride if output_stride <= 16 else 0.5
    return tuple(int(r * scale) for r in (6, 12, 18))  # type: ignore[return-value]


class ImagePooling(nn.Sequential):
    """Global average pool -> 1x1 conv-BN-ReLU -> broadcast back to the input size."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), ConvBNReLU(in_ch, out_ch, 1))

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        return same_layout(F.interpolate(super().forward(x), size=size, mode="bilinear", align_corners=False), x)


class ASPP(nn.Module):
    """Shape: ``(N, in_ch, h, w) -> (N, out_ch, h, w)``.

    Args:
        rates: dilation of the three 3x3 branches.
        separable: depthwise-separable 3x3 branches (DeepLabv3+'s Xception/MobileNet variant).
        image_pooling: include the image-level feature branch.
        dropout: after the projection (0.1 in the TF release, 0.5 in torchvision).
        depthwise_relu: ReLU after the separable branches' depthwise BN (the TF release).
        project_kernel: kernel of the projection over the concatenated branches: 1 (paper,
            torchvision) or 3 (mmsegmentation's ``ASPPHead`` ``bottleneck``).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        separable: bool = False,
        image_pooling: bool = True,
        dropout: float = 0.1,
        depthwise_relu: bool = True,
        project_kernel: int = 1,
    ) -> None:
        super().__init__()
        if project_kernel not in (1, 3):
            raise InvalidOptionError(f"project_kernel={project_kernel!r}; allowed: 1, 3")
        branches: list[nn.Module] = [ConvBNReLU(in_ch, out_ch, 1)]
        branches += [conv_bn_relu(in_ch, out_ch, r, separable, depthwise_relu) for r in rates]
        if image_pooling:
            branches.append(ImagePooling(in_ch, out_ch))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(ConvBNReLU(out_ch * len(branches), out_ch, project_kernel), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([b(x) for b in self.branches], dim=1))

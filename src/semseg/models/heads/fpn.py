"""Semantic FPN (Kirillov, Girshick, He and Dollar, "Panoptic Feature Pyramid Networks",
https://arxiv.org/abs/1901.02446, Sec. 3 and Fig. 3), on the FPN of Lin et al.
(https://arxiv.org/abs/1612.03144).

FPN: a lateral 1x1 convolution brings each of C2 ... C5 (strides 4 ... 32) to 256 channels; the
top-down pathway upsamples the coarser map 2x (nearest) and adds it to the lateral; a 3x3
convolution on each sum gives P2 ... P5. Semantic branch: from each P level, repeated stages of
3x3 conv (128 channels) + GroupNorm + ReLU + 2x bilinear upsampling until 1/4 scale (P5: 3 stages,
P4: 2, P3: 1, P2: one conv without upsampling); the four maps are summed and a 1x1 convolution
classifies at 1/4, upsampled 4x to the input by the model.

No dropout before the classifier by default, as detectron2's ``SemSegFPNHead`` (the paper's
code); ``dropout=0.1`` is mmsegmentation's ``FPNHead``, whose scale stages also put batch norm
where the paper has GroupNorm (``norm="batch"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from semseg.errors import InvalidOptionError
from semseg.models.heads import index_of_stride
from semseg.models.layers import resize

LEVEL_STRIDES = (4, 8, 16, 32)
NORMS = ("group", "batch")


class FPN(nn.Module):
    """Shape: C2 ... C5 ``(N, C_i, H / s_i, W / s_i)`` -> P2 ... P5 ``(N, channels, H / s_i, W / s_i)``."""

    def __init__(self, in_channels: Sequence[int], channels: int = 256) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.output = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in in_channels)

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        laterals = [lat(f) for lat, f in zip(self.lateral, feats, strict=True)]
        for i in range(len(laterals) - 1, 0, -1):  # top-down, coarse to fine
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest"
            )
        return [out(lat) for out, lat in zip(self.output, laterals, strict=True)]


class ScaleStage(nn.Sequential):
    """3x3 conv -> GroupNorm(32) (the paper) or BatchNorm (``norm="batch"``, mmsegmentation) -> ReLU
    (-> 2x bilinear upsampling)."""

    def __init__(self, in_ch: int, out_ch: int, upsample: bool, norm: str = "group") -> None:
        norm_layer = nn.GroupNorm(32, out_ch) if norm == "group" else nn.BatchNorm2d(out_ch)
        layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), norm_layer]
        layers.append(nn.ReLU(inplace=True))
        if upsample:
            layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        super().__init__(*layers)


class SemanticFPNHead(nn.Module):
    """FPN + the semantic segmentation branch.

    Args:
        in_channels, in_strides: backbone features; those at strides 4, 8, 16 and 32 are used.
        fpn_channels: width of P2 ... P5 (256); channels: width of the semantic branch (128).
        dropout: channel dropout before the classifier (0: none, as detectron2).
        norm: normalisation in the scale stages: ``"group"`` (GroupNorm(32), the paper and
            detectron2) or ``"batch"`` (mmsegmentation's ``FPNHead``).

    Shape:
        features -> ``(N, num_classes, H / 4, W / 4)``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        fpn_channels: int = 256,
        channels: int = 128,
        dropout: float = 0.0,
        norm: str = "group",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise InvalidOptionError(f"norm={norm!r}; allowed: {', '.join(NORMS)}")
        if any(list(in_strides).count(s) != 1 for s in LEVEL_STRIDES):
            raise InvalidOptionError(
                f"Semantic FPN needs one backbone feature at each of strides 4, 8, 16, 32; this backbone gives "
                f"{', '.join(map(str, in_strides))} (build it with output_stride=32)"
            )
        self.index = [index_of_stride(in_strides, s, "Semantic FPN") for s in LEVEL_STRIDES]
        self.fpn = FPN([in_channels[i] for i in self.index], fpn_channels)
        self.scale_heads = nn.ModuleList()
        for level in range(4):  # P2 needs 0 upsamplings, P5 three
            n = max(1, level)
            stages = [
                ScaleStage(fpn_channels if j == 0 else channels, channels, upsample=level > 0, norm=norm)
                for j in range(n)
            ]
            self.scale_heads.append(nn.Sequential(*stages))
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(channels, num_classes, 1)
        self.stride = 4

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        pyramid = self.fpn([features[i] for i in self.index])
        out = self.scale_heads[0](pyramid[0])
        for head, p in zip(self.scale_heads[1:], pyramid[1:], strict=True):
            # Odd sizes: 2^k x a coarse map overshoots by a pixel; resize brings it back.
            out = out + resize(head(p), out.shape[-2:])
        return self.classifier(self.dropout(out))

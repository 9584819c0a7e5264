"""Context Encoding Module and EncNet head (Zhang et al., https://arxiv.org/abs/1803.08904).

Encoding layer (Sec. 3.1): ``K`` learnable codewords ``c_k`` and smoothing factors ``s_k``; each
pixel feature ``x_i`` is softly assigned to every codeword,
``a_ik = exp(-s_k |x_i - c_k|^2) / sum_j exp(-s_j |x_i - c_j|^2)``, and the residuals are
aggregated over all pixels, ``e_k = sum_i a_ik (x_i - c_k)``. The ``K`` encoded vectors go through
BN and ReLU and are averaged into one ``D``-vector ``e``.

Featuremap attention (Sec. 3.2): ``gamma = gate(W e)`` rescales every channel of every pixel.
The released code (PyTorch-Encoding ``encoding/models/sseg/encnet.py``, ``EncModule``) returns
``Y = relu(X + X * gamma)``, a residual form, and that is the default (``residual=True``);
``residual=False`` is the paper's ``Y = X * gamma``. ``gate="sigmoid"`` is the paper's independent per-channel gate in (0, 1);
``gate="softmax"`` normalises the weights across channels instead (``D * softmax``, so their
mean is 1 and the features keep their scale), which makes channels compete for emphasis.

Semantic Encoding loss (Sec. 3.2): a fully connected layer on ``e`` predicts which classes occur
in the image; its logits are trained with binary cross-entropy against the presence vector of
the mask (see :func:`semseg.losses.criterion.se_target`).

``lateral=True`` (the release's option, on for its Pascal VOC and Pascal Context models) first
fuses stage 2 and stage 3 into the head: each reduced to ``channels`` by a 1x1 conv-BN-ReLU,
concatenated with the 3x3 conv's output and mixed by a 3x3 conv-BN-ReLU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from semseg.errors import InvalidOptionError
from semseg.models.heads import HeadOutput
from semseg.models.layers import ConvBNReLU, same_layout

GATES = ("sigmoid", "softmax")


class Encoding(nn.Module):
    """Residual encoding with ``num_codes`` codewords of ``channels`` dimensions.

    Computes distances through ``|x|^2 - 2 x.c + |c|^2`` and aggregates with two matrix products,
    so no ``(N, HW, K, D)`` residual tensor is ever built.

    Shape: ``(N, D, H, W) -> (N, K, D)``.
    """

    def __init__(self, channels: int, num_codes: int) -> None:
        super().__init__()
        if num_codes < 1:
            raise InvalidOptionError(f"num_codes={num_codes!r} must be a positive integer (the paper uses 32)")
        self.channels, self.num_codes = channels, num_codes
        std = 1.0 / math.sqrt(num_codes * channels)
        self.codewords = nn.Parameter(torch.empty(num_codes, channels).uniform_(-std, std))
        # Smoothing factors s_k > 0 at start; the assignment uses exp(-s_k * distance).
        self.smoothing = nn.Parameter(torch.empty(num_codes).uniform_(0.0, 1.0))

    def assignment(self, x: Tensor) -> Tensor:
        """Soft-assignment weights ``(N, HW, K)`` for features ``x`` of shape ``(N, HW, D)``."""
        c = self.codewords
        dist = x.pow(2).sum(-1, keepdim=True) - 2.0 * (x @ c.t()) + c.pow(2).sum(-1)
        return torch.softmax(-self.smoothing * dist, dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(2).transpose(1, 2)  # (N, HW, D)
        a = self.assignment(x)
        # sum_i a_ik (x_i - c_k) = (A^T X)_k - (sum_i a_ik) c_k
        return a.transpose(1, 2) @ x - a.sum(1).unsqueeze(-1) * self.codewords


class ContextEncoding(nn.Module):
    """1x1 conv-BN-ReLU -> Encoding -> BN -> ReLU -> mean over codewords -> channel gate.

    ``forward`` returns the rescaled features, ``relu(x + x * gamma)`` (``residual``, the released
    code) or ``x * gamma`` (the paper's formula), and the encoded vector ``e`` (for the SE branch).

    Shape: ``(N, C, h, w) -> ((N, C, h, w), (N, C))``.
    """

    def __init__(self, channels: int, num_codes: int = 32, gate: str = "sigmoid", residual: bool = True) -> None:
        super().__init__()
        if gate not in GATES:
            raise InvalidOptionError(f"gate={gate!r}; allowed: {', '.join(GATES)}")
        self.gate = gate
        self.residual = residual
        self.reduce = ConvBNReLU(channels, channels, 1)
        self.encoding = Encoding(channels, num_codes)
        self.norm = nn.BatchNorm1d(num_codes)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        encoded = self.relu(self.norm(self.encoding(self.reduce(x)))).mean(dim=1)
        scores = self.fc(encoded)
        if self.gate == "sigmoid":
            gamma = torch.sigmoid(scores)
        else:
            gamma = torch.softmax(scores, dim=1) * scores.shape[1]
        scaled = x * gamma[:, :, None, None]
        return (torch.relu(x + scaled) if self.residual else scaled), encoded


class EncHead(nn.Module):
    """EncNet head on the last (stride 8) feature: 3x3 conv-BN-ReLU to ``channels``, (lateral
    fusion,) Context Encoding Module, dropout, 1x1 classifier; plus the SE classifier on the
    encoded vector.

    Args:
        num_codes: codewords ``K`` (32 in the paper).
        gate: ``"sigmoid"`` (paper) or ``"softmax"`` channel weighting (see module docstring).
        se_loss: build the SE branch, whose logits ``forward`` returns as ``extras["se"]``.
        residual: ``relu(x + x * gamma)`` (released code) or ``x * gamma`` (paper).
        lateral: fuse the stage-2 and stage-3 features (the release's Pascal models).
        dropout: element-wise (``nn.Dropout``, as the release) before the classifier.

    Shape: features -> :class:`~semseg.models.heads.HeadOutput` with logits
    ``(N, num_classes, H/8, W/8)`` and, with ``se_loss``, ``extras["se"]`` of ``(N, num_classes)``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        channels: int = 512,
        num_codes: int = 32,
        gate: str = "sigmoid",
        se_loss: bool = True,
        dropout: float = 0.1,
        residual: bool = True,
        lateral: bool = False,
    ) -> None:
        super().__init__()
        self.block = ConvBNReLU(in_channels[-1], channels, 3)
        self.lateral: nn.ModuleList | None = None
        self.fusion: nn.Module | None = None
        if lateral:
            if len(in_channels) < 4:
                raise InvalidOptionError("EncNet lateral=True needs stage-2 and stage-3 features (a ResNet backbone)")
            # The release reads its c2 and c3 (inputs[1], inputs[2]): our features [-3] and [-2].
            self.lateral = nn.ModuleList(ConvBNReLU(in_channels[i], channels, 1) for i in (-3, -2))
            self.fusion = ConvBNReLU(3 * channels, channels, 3)
        self.encode = ContextEncoding(channels, num_codes, gate, residual)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)
        self.se_classifier = nn.Linear(channels, num_classes) if se_loss else None

    def forward(self, features: Sequence[Tensor]) -> HeadOutput:
        x = self.block(features[-1])
        if self.lateral is not None and self.fusion is not None:
            laterals = [same_layout(conv(features[i]), x) for conv, i in zip(self.lateral, (-3, -2), strict=True)]
            x = self.fusion(torch.cat([x, *laterals], dim=1))
        x, encoded = self.encode(x)
        logits = self.classifier(self.dropout(x))
        extras = {"se": self.se_classifier(encoded)} if self.se_classifier is not None else {}
        return HeadOutput(logits, extras)

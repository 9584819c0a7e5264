"""Heads of DeepLab v1 (Chen et al., https://arxiv.org/abs/1412.7062) and v2
(https://arxiv.org/abs/1606.00915).

* :class:`LargeFOVHead`: DeepLab-LargeFOV's ``fc8``, a 1x1 classifier on the backbone's ``fc7``
  (the dilated ``fc6``/``fc7`` themselves belong to the VGG-16 ``"deeplab"`` backbone), with the
  DeepLab-MSc branches added to its logits when built with ``msc=True``.
* :class:`MultiScaleHead`: DeepLab-MSc (v1, Sec. 4.3): a two-layer MLP (128 3x3 filters, then 128
  1x1 filters, each with ReLU and dropout 0.5) on the input and on ``pool1`` ... ``pool4``, each brought to the output stride by the
  stride of its 3x3 convolution. The paper concatenates the five 128-channel maps to ``fc7``
  before the classifier; that equals summing per-branch 1x1 classifiers' logits into the main
  logits, which is what is done here (one extra bias per branch).
* :class:`ASPPv2Head`: DeepLab v2's ASPP-L: parallel 3x3 classifiers with dilation 6, 12, 18, 24
  on the last feature, their logits summed (v2 Sec. 3.3, Fig. 4); v3's ASPP is in ``aspp.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from semseg.errors import InvalidOptionError
from semseg.models.heads import check_input_feature
from semseg.models.layers import resize

# DeepLab-MSc's branches read the input image and pool1 ... pool4: the first five features of the
# VGG-16 "deeplab" backbone built with with_input=True.
MSC_INPUTS = 5


def _init_classifier(conv: nn.Conv2d) -> None:
    # DeepLab initialises its new classifier layers from N(0, 0.01) with zero bias.
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.zeros_(conv.bias)


class LargeFOVHead(nn.Module):
    """DeepLab-LargeFOV's classifier, plus DeepLab-MSc's branches with ``msc=True``.

    Args:
        in_channels, in_strides: of the backbone features; with ``msc`` the first five must be
            the input image (stride 1) and ``pool1`` ... ``pool4`` (``VGG16("deeplab", with_input=True)``).
        msc: add the :class:`MultiScaleHead` branches' logits to ``fc8``'s.

    Shape: ``features[-1]`` of ``(N, C, h, w)`` -> ``(N, num_classes, h, w)``.
    """

    def __init__(
        self, in_channels: Sequence[int], in_strides: Sequence[int], num_classes: int, msc: bool = False
    ) -> None:
        super().__init__()
        self.fc8 = nn.Conv2d(in_channels[-1], num_classes, 1)
        _init_classifier(self.fc8)
        self.stride = in_strides[-1]
        self.msc: MultiScaleHead | None = None
        if msc:
            check_input_feature(in_strides, "DeepLab-MSc")
            chans, strides = in_channels[:MSC_INPUTS], in_strides[:MSC_INPUTS]
            self.msc = MultiScaleHead(chans, strides, num_classes, out_stride=self.stride)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        logits = self.fc8(features[-1])
        if self.msc is not None:
            logits = logits + self.msc(features[:MSC_INPUTS], logits.shape[-2:])
        return logits


class MultiScaleHead(nn.Module):
    """DeepLab-MSc's extra prediction branches.

    Args:
        in_channels, in_strides: of the maps the branches read (input, pool1 ... pool4).
        out_stride: stride of the main logits (8 for LargeFOV); each branch's 3x3 conv has stride
            ``out_stride / in_stride``.
        dropout: element-wise, after each of a branch's two ReLUs (0.5 in the released prototxt).

    Shape:
        list of ``(N, C_i, H / s_i, W / s_i)`` -> ``(N, num_classes, H / out_stride, W / out_stride)``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        out_stride: int = 8,
        width: int = 128,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if any(out_stride % s for s in in_strides):
            raise InvalidOptionError(f"MSc branches need input strides dividing {out_stride}, got {tuple(in_strides)}")
        self.branches = nn.ModuleList()
        for ch, s in zip(in_channels, in_strides, strict=True):
            classifier = nn.Conv2d(width, num_classes, 1)
            _init_classifier(classifier)
            # Each ReLU is followed by element-wise dropout 0.5 in the released MSc prototxt; the
            # two sit in one Sequential so that the convs keep their indices (0, 2, 4).
            self.branches.append(
                nn.Sequential(
                    nn.Conv2d(ch, width, 3, stride=out_stride // s, padding=1),
                    nn.Sequential(nn.ReLU(inplace=True), nn.Dropout(dropout)),
                    nn.Conv2d(width, width, 1),
                    nn.Sequential(nn.ReLU(inplace=True), nn.Dropout(dropout)),
                    classifier,
                )
            )

    def forward(self, features: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        """Sum of the branches' logits at ``size`` (the main logits' size)."""
        total = None
        for branch, feat in zip(self.branches, features, strict=True):
            out = resize(branch(feat), size)  # rounding of odd sizes differs by a pixel
            total = out if total is None else total + out
        assert total is not None
        return total


class ASPPv2Head(nn.Module):
    """Shape: ``features[-1]`` of ``(N, C, h, w)`` -> ``(N, num_classes, h, w)``: the sum of one
    dilated 3x3 classifier per rate.

    Args:
        rates: dilations of the branches; the paper's ASPP-L is ``(6, 12, 18, 24)`` at output stride 8.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        rates: Sequence[int] = (6, 12, 18, 24),
    ) -> None:
        super().__init__()
        if not rates or not all(isinstance(r, int) and r >= 1 for r in rates):
            raise InvalidOptionError(f"ASPP rates must be positive integers, e.g. 6, 12, 18, 24; got {rates!r}")
        self.rates = tuple(rates)
        self.branches = nn.ModuleList(nn.Conv2d(in_channels[-1], num_classes, 3, padding=r, dilation=r) for r in rates)
        for conv in self.branches:
            _init_classifier(conv)
        self.stride = in_strides[-1]

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = features[-1]
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out

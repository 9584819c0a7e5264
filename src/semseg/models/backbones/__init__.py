"""Backbones: ``forward(x) -> list[Tensor]`` high to low resolution, with ``out_channels`` and
``strides`` tuples of the same length. :func:`build_backbone` makes one by name."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

from torch import nn

from semseg.errors import InvalidOptionError
from semseg.models.backbones.hrnet import HRNet, hrnet_backbone
from semseg.models.backbones.mobilenetv2 import MobileNetV2
from semseg.models.backbones.resnet import ResNet
from semseg.models.backbones.vgg import VGG16, vgg16_backbone
from semseg.models.backbones.weights import load_backbone_weights

# name -> factory(output_stride, multi_grid, **extra). Other modules may add entries.
BACKBONES: dict[str, Callable[..., nn.Module]] = {
    **{f"resnet{d}": functools.partial(ResNet, d) for d in (18, 34, 50, 101, 152)},
    "mobilenetv2": lambda output_stride=32, multi_grid=None, **extra: _mobilenet(output_stride, multi_grid, **extra),
    **{f"hrnetv2_w{w}": functools.partial(hrnet_backbone, w) for w in (18, 32, 48)},
    "vgg16": vgg16_backbone,
}


def _mobilenet(output_stride: int, multi_grid: Sequence[int] | None, final_conv: bool = True) -> nn.Module:
    if multi_grid is not None:
        raise InvalidOptionError("multi_grid applies to ResNet backbones only; mobilenetv2 takes none")
    return MobileNetV2(output_stride, final_conv=final_conv)


def build_backbone(
    name: str,
    output_stride: int = 32,
    multi_grid: Sequence[int] | None = None,
    weights: str | os.PathLike[str] | None = None,
    **extra: object,
) -> nn.Module:
    """Build a backbone by name and optionally load pretrained weights (see ``weights.py``)."""
    if name not in BACKBONES:
        raise InvalidOptionError(f"unknown backbone {name!r}; allowed: {', '.join(sorted(BACKBONES))}")
    backbone = BACKBONES[name](output_stride=output_stride, multi_grid=multi_grid, **extra)
    if weights is not None:
        load_backbone_weights(backbone, name, weights)
    return backbone


__all__ = ["BACKBONES", "VGG16", "HRNet", "MobileNetV2", "ResNet", "build_backbone", "load_backbone_weights"]

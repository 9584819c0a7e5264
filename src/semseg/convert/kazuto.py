"""DeepLab v2 as kazuto1011/deeplab-pytorch ports the authors' Caffe model (``libs/models/deeplabv2.py``,
``libs/models/resnet.py``).

Its checkpoints (``main.py``, and the converted ``.caffemodel`` files) are the state dict of the
``MSC`` wrapper: ``base.`` + the network's keys. The ResNet is Caffe's: stride on each
bottleneck's first 1x1 conv (``reduce``), every block of the dilated stages dilated, a stem
max-pool that rounds up; blocks are ``layer{2..5}.block{1..n}`` with ``reduce``, ``conv3x3``,
``increase`` and ``shortcut``; ASPP-L is four 3x3 classifiers ``aspp.c0..c3``, summed. That is
semseg's ``deeplabv2_resnet*`` with its defaults. Its input is Caffe's: BGR on the 0-255 scale
minus the mean (104.008, 116.669, 122.675): the converter turns the first conv to read RGB and
records mean (122.675, 116.669, 104.008) / 255 and std 1 / 255, so semseg's normalisation of a
0-1 RGB image gives exactly those values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from semseg.convert.spec import ModelSpec, Rule

_PARTS = {"reduce": "1", "conv3x3": "2", "increase": "3"}
_PREFIX = r"(?:base\.)?"


def _block(match: re.Match[str]) -> str:
    layer, block, part, kind, rest = match.groups()
    where = f"backbone.layer{int(layer) - 1}.{int(block) - 1}"
    if part == "shortcut":
        return f"{where}.downsample.{0 if kind == 'conv' else 1}.{rest}"
    return f"{where}.{kind}{_PARTS[part]}.{rest}"


_RULES: list[Rule] = [
    (rf"{_PREFIX}layer1\.conv1\.conv\.(.*)", r"backbone.conv1.\1"),
    (rf"{_PREFIX}layer1\.conv1\.bn\.(.*)", r"backbone.bn1.\1"),
    (rf"{_PREFIX}layer([2-5])\.block(\d+)\.(reduce|conv3x3|increase|shortcut)\.(conv|bn)\.(.*)", _block),
    (rf"{_PREFIX}aspp\.c(\d)\.(.*)", r"head.branches.\1.\2"),
]


def _rgb_first_conv(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The release's first conv reads BGR; semseg feeds RGB."""
    weight = tensors["backbone.conv1.weight"]
    return {**tensors, "backbone.conv1.weight": weight[:, [2, 1, 0]]}


SPECS: dict[str, ModelSpec] = {
    f"deeplabv2_resnet{depth}": ModelSpec(
        model=f"deeplabv2_resnet{depth}",
        options={"style": "caffe", "dilate_first_block": True, "stem_pool_ceil": True},
        rules=_RULES,
        fixes=(_rgb_first_conv,),
        classifier="base.aspp.c0.weight",
        mean=(122.675 / 255, 116.669 / 255, 104.008 / 255),
        std=(1 / 255, 1 / 255, 1 / 255),
        summary=f"kazuto1011/deeplab-pytorch DeepLabV2 ResNet-{depth}: Caffe ResNet, ASPP-L 6/12/18/24, BGR input",
    )
    for depth in (50, 101)
}


def detect(keys: Mapping[str, tuple[int, ...]]) -> str | None:
    """``deeplabv2_resnet101`` / ``_resnet50`` for the release's keys, else ``None``."""
    if "base.aspp.c0.weight" not in keys or "base.layer1.conv1.conv.weight" not in keys:
        return None
    return "deeplabv2_resnet101" if "base.layer4.block23.reduce.conv.weight" in keys else "deeplabv2_resnet50"

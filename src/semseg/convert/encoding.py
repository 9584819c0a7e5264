"""EncNet as its author released it (zhanghang1989/PyTorch-Encoding, ``encoding/models/sseg/encnet.py``).

Its model-zoo files and ``train.py`` checkpoints hold the network's own keys: the backbone under
``pretrained.`` (``resnet50s``/``resnet101s``: a 64-64-128 deep stem ``conv1.{0,1,3,4,6}`` with
``bn1`` after it, layer3/layer4 dilated with the first block of each at half the dilation, and an
unused ``fc``, dropped here), the head under ``head.`` (``conv5``; with ``lateral`` the
``connect`` convs on layer2/layer3 and ``fusion``; ``encmodule.encoding`` = 1x1 conv, BN, ReLU,
Encoding, BN, ReLU, mean; ``encmodule.fc``, ``encmodule.selayer``; ``conv6`` = dropout +
classifier) and the FCN aux head under ``auxlayer.conv5``. Every resize has
``align_corners=True``. ``Encoding.scale`` multiplies the squared distances inside the softmax
(learned negative); semseg's ``smoothing`` enters negated, so the converter flips its sign.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from semseg.convert.spec import ModelSpec, Rule

_RULES: list[Rule] = [
    (r"pretrained\.conv1\.([0-6])\.(.*)", r"backbone.stem.\1.\2"),
    (r"pretrained\.bn1\.(.*)", r"backbone.stem.7.\1"),
    (r"pretrained\.(layer[1-4]\..*)", r"backbone.\1"),
    (r"head\.conv5\.([01])\.(.*)", r"head.block.\1.\2"),
    (r"head\.connect\.([01])\.([01])\.(.*)", r"head.lateral.\1.\2.\3"),
    (r"head\.fusion\.([01])\.(.*)", r"head.fusion.\1.\2"),
    (r"head\.encmodule\.encoding\.([01])\.(.*)", r"head.encode.reduce.\1.\2"),
    (r"head\.encmodule\.encoding\.3\.codewords", "head.encode.encoding.codewords"),
    (r"head\.encmodule\.encoding\.3\.scale", "head.encode.encoding.smoothing"),
    (r"head\.encmodule\.encoding\.4\.(.*)", r"head.encode.norm.\1"),
    (r"head\.encmodule\.fc\.0\.(.*)", r"head.encode.fc.\1"),
    (r"head\.encmodule\.selayer\.(.*)", r"head.se_classifier.\1"),
    (r"head\.conv6\.1\.(.*)", r"head.classifier.\1"),
    (r"auxlayer\.conv5\.([01])\.(.*)", r"aux_heads.aux.block.\1.\2"),
    (r"auxlayer\.conv5\.4\.(.*)", r"aux_heads.aux.classifier.\1"),
]


def _negate_smoothing(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    key = "head.encode.encoding.smoothing"
    return {**tensors, key: -tensors[key]} if key in tensors else tensors


SPECS: dict[str, ModelSpec] = {}
for _depth in (50, 101):
    for _suffix, _lateral in (("", False), ("_lateral", True)):
        SPECS[f"encnet_resnet{_depth}s{_suffix}"] = ModelSpec(
            model=f"encnet_resnet{_depth}",
            options={"stem_width": 64, "align_corners": True, "lateral": _lateral, "se_loss": True},
            rules=_RULES,
            fixes=(_negate_smoothing,),
            drop=(r"pretrained\.fc\..*",),
            classifier="head.conv6.1.weight",
            aux_prefix="auxlayer.",
            summary=f"PyTorch-Encoding EncNet ResNet-{_depth}s: 64-64-128 stem, align_corners=True, lateral={_lateral}",
        )


def detect(keys: Mapping[str, tuple[int, ...]]) -> str | None:
    """``encnet_resnet{50,101}s[_lateral]`` for the release's keys, else ``None``."""
    if "head.encmodule.encoding.3.codewords" not in keys or "pretrained.conv1.0.weight" not in keys:
        return None
    depth = 101 if "pretrained.layer3.22.conv1.weight" in keys else 50
    return f"encnet_resnet{depth}s{'_lateral' if 'head.fusion.0.weight' in keys else ''}"

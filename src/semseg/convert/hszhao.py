"""PSPNet as its authors released it in PyTorch (hszhao/semseg, ``model/pspnet.py``,
``model/resnet.py``).

Its checkpoints (``tool/train.py``) hold ``{"epoch", "state_dict", "optimizer"}`` of a
DataParallel model (the ``module.`` prefix is removed on reading). ``layer0`` is the 64-64-128
deep stem with the max pool (``layer0.{0,1,3,4,6,7}``, the same positions as semseg's
``backbone.stem``); every block of layer3 and layer4 is dilated (2 and 4), the first included;
``ppm.features.i`` is pool, 1x1 conv, BN, ReLU; ``cls`` and ``aux`` are 3x3 conv, BN, ReLU,
dropout, classifier; every resize has ``align_corners=True``. That is semseg's ``pspnet_resnet*``
with its defaults (``stem_width=64, dilate_first_block=True, align_corners=True``).
"""

from __future__ import annotations

from collections.abc import Mapping

from semseg.convert.spec import ModelSpec, Rule

_RULES: list[Rule] = [
    (r"layer0\.(.*)", r"backbone.stem.\1"),
    (r"(layer[1-4]\..*)", r"backbone.\1"),
    (r"ppm\.features\.(\d)\.1\.(.*)", r"head.ppm.stages.\1.1.0.\2"),
    (r"ppm\.features\.(\d)\.2\.(.*)", r"head.ppm.stages.\1.1.1.\2"),
    (r"cls\.0\.(.*)", r"head.block.0.\1"),
    (r"cls\.1\.(.*)", r"head.block.1.\1"),
    (r"cls\.4\.(.*)", r"head.classifier.\1"),
    (r"aux\.0\.(.*)", r"aux_heads.aux.block.0.\1"),
    (r"aux\.1\.(.*)", r"aux_heads.aux.block.1.\1"),
    (r"aux\.4\.(.*)", r"aux_heads.aux.classifier.\1"),
]

SPECS: dict[str, ModelSpec] = {
    f"pspnet{depth}": ModelSpec(
        model=f"pspnet_resnet{depth}",
        options={"stem_width": 64, "dilate_first_block": True, "align_corners": True},
        rules=_RULES,
        classifier="cls.4.weight",
        aux_prefix="aux.",
        summary=f"hszhao/semseg PSPNet{depth}: 64-64-128 stem, every layer3/4 block dilated, align_corners=True",
    )
    for depth in (50, 101)
}


def detect(keys: Mapping[str, tuple[int, ...]]) -> str | None:
    """``pspnet50`` / ``pspnet101`` for the release's keys, else ``None``."""
    if "cls.4.weight" not in keys or "ppm.features.0.1.weight" not in keys or "layer0.0.weight" not in keys:
        return None
    return "pspnet101" if "layer3.22.conv1.weight" in keys else "pspnet50"

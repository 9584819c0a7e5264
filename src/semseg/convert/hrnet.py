"""The HRNet authors' release (HRNet/HRNet-Semantic-Segmentation, ``lib/models/seg_hrnet.py``).

Its checkpoints are saved from the training wrapper: ``model.`` + the network's keys, plus the
loss's class weights ``loss.criterion.weight`` (dropped here). The backbone's keys (``conv1``,
``stage2``, ``transition1``, ``fuse_layers``, ...) are semseg's ``backbone.`` ones; the head
``last_layer`` is a 1x1 conv *with* bias, BN, ReLU and the classifier (semseg's
``head_bias=True``). The release's Cityscapes configs
(``experiments/cityscapes/seg_hrnet_w48_*.yaml``) set ``ALIGN_CORNERS: False`` for every resize;
``hrnetv2_w48_align_corners`` is for checkpoints trained with the code's default (``True``).
"""

from __future__ import annotations

from collections.abc import Mapping

from semseg.convert.spec import ModelSpec, Rule

_RULES: list[Rule] = [
    (r"(?:model\.)?last_layer\.0\.(.*)", r"head.mix.0.\1"),
    (r"(?:model\.)?last_layer\.1\.(.*)", r"head.mix.1.\1"),
    (r"(?:model\.)?last_layer\.3\.(.*)", r"head.classifier.\1"),
    (r"(?:model\.)?(.*)", r"backbone.\1"),
]

SPECS: dict[str, ModelSpec] = {}
for _width in (18, 32, 48):
    for _suffix, _corners in (("", False), ("_align_corners", True)):
        SPECS[f"hrnetv2_w{_width}{_suffix}"] = ModelSpec(
            model=f"hrnetv2_w{_width}",
            options={"head_bias": True, "align_corners": _corners},
            rules=_RULES,
            classifier="model.last_layer.3.weight",
            drop=(r"loss\..*",),
            summary=f"HRNet-Semantic-Segmentation HRNetV2-W{_width}, head conv with bias, align_corners={_corners}",
        )


def detect(keys: Mapping[str, tuple[int, ...]]) -> str | None:
    """``hrnetv2_w<width>`` for the release's keys (the width of the first branch), else ``None``."""
    if "model.last_layer.3.weight" not in keys or "model.stage4.0.fuse_layers.0.1.0.weight" not in keys:
        return None
    width = keys.get("model.transition1.0.0.weight", (0,))[0]
    return f"hrnetv2_w{width}" if f"hrnetv2_w{width}" in SPECS else None

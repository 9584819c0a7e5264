"""torchvision's segmentation models (``torchvision.models.segmentation``): DeepLabv3 and FCN on
ResNet-50/101, trained on the COCO subset with the 20 Pascal VOC categories (21 classes).

torchvision builds both at output stride 8 with ``replace_stride_with_dilation=[False, True,
True]`` and no multi-grid, the ASPP rates 12/24/36, and an FCN auxiliary head on layer3
(``aux_classifier``): semseg's ``deeplabv3_resnet*`` with ``output_stride=8, multi_grid=None,
head_form="torchvision"`` (torchvision's 3x3 conv after the ASPP) and ``fcn_resnet*_d8`` are the
same networks, so the backbone keys carry over unchanged and only
the heads are renamed.
"""

from __future__ import annotations

from collections.abc import Mapping

from semseg.convert.spec import ModelSpec, Rule

_AUX: list[Rule] = [
    (r"aux_classifier\.0\.(.*)", r"aux_heads.aux.block.0.\1"),
    (r"aux_classifier\.1\.(.*)", r"aux_heads.aux.block.1.\1"),
    (r"aux_classifier\.4\.(.*)", r"aux_heads.aux.classifier.\1"),
]

_DEEPLABV3: list[Rule] = [
    # ASPP: 1x1 branch, three 3x3 branches (conv, BN), then image pooling (pool, conv, BN).
    (r"classifier\.0\.convs\.([0-3])\.(.*)", r"head.aspp.branches.\1.\2"),
    (r"classifier\.0\.convs\.4\.1\.(.*)", r"head.aspp.branches.4.1.0.\1"),
    (r"classifier\.0\.convs\.4\.2\.(.*)", r"head.aspp.branches.4.1.1.\1"),
    (r"classifier\.0\.project\.0\.(.*)", r"head.aspp.project.0.0.\1"),
    (r"classifier\.0\.project\.1\.(.*)", r"head.aspp.project.0.1.\1"),
    (r"classifier\.1\.(.*)", r"head.block.0.\1"),
    (r"classifier\.2\.(.*)", r"head.block.1.\1"),
    (r"classifier\.4\.(.*)", r"head.classifier.\1"),
    *_AUX,
]

_FCN: list[Rule] = [
    (r"classifier\.0\.(.*)", r"head.block.0.\1"),
    (r"classifier\.1\.(.*)", r"head.block.1.\1"),
    (r"classifier\.4\.(.*)", r"head.classifier.\1"),
    *_AUX,
]

SPECS: dict[str, ModelSpec] = {}
for _depth in (50, 101):
    SPECS[f"deeplabv3_resnet{_depth}"] = ModelSpec(
        model=f"deeplabv3_resnet{_depth}",
        options={"output_stride": 8, "multi_grid": None, "head_form": "torchvision"},
        rules=_DEEPLABV3,
        classifier="classifier.4.weight",
        aux_prefix="aux_classifier.",
        summary=f"torchvision deeplabv3_resnet{_depth}: OS8, ASPP 12/24/36, no multi-grid",
    )
    SPECS[f"fcn_resnet{_depth}"] = ModelSpec(
        model=f"fcn_resnet{_depth}_d8",
        options={},
        rules=_FCN,
        classifier="classifier.4.weight",
        aux_prefix="aux_classifier.",
        summary=f"torchvision fcn_resnet{_depth}: OS8 FCN head",
    )


def detect(keys: Mapping[str, tuple[int, ...]]) -> str | None:
    """The torchvision model name of a state dict's keys (and shapes), or ``None`` when they are not torchvision's."""
    if "classifier.4.weight" not in keys or "backbone.conv1.weight" not in keys:
        return None
    depth = 101 if "backbone.layer3.22.conv1.weight" in keys else 50
    head = "deeplabv3" if "classifier.0.project.0.weight" in keys else "fcn"
    return f"{head}_resnet{depth}"

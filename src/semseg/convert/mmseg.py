"""mmsegmentation 1.x checkpoints (``{"meta": {"dataset_meta": {"classes": ...}}, "state_dict": ...}``).

mmseg's ``ResNetV1c`` is a ResNet with the 32-32-64 deep stem (``backbone.stem.{0,1,3,4,6,7}``),
its torchvision-style bottlenecks (stride on the 3x3 conv) and, in the ``-d8`` models, layer3 and
layer4 dilated by 2 and 4 with the first block of each at half the dilation
(``contract_dilation``); every resize is bilinear with ``align_corners=False``; inputs are
normalised with the ImageNet mean/std in RGB order. Its ``ConvModule`` is ``conv`` + ``bn``
(+ ReLU), the classifier of every head is ``conv_seg``.

Which families map onto a semseg network, and what semseg lacks for the others, is listed in
``docs/convert.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from semseg.convert.spec import ModelSpec, Rule


def _conv_module(source: str, target: str) -> list[Rule]:
    """mmseg's ``ConvModule`` (``.conv``, ``.bn``) onto semseg's ``ConvBNReLU`` (``.0``, ``.1``)."""
    # The tail is a named group: ``source`` may hold numbered groups of its own (``target`` uses them).
    return [
        (rf"{source}\.conv\.(?P<rest>.*)", rf"{target}.0.\g<rest>"),
        (rf"{source}\.bn\.(?P<rest>.*)", rf"{target}.1.\g<rest>"),
    ]


# The FCN auxiliary head on layer3 (``num_convs=1``, 256 channels, no concat input) is semseg's.
_AUX: list[Rule] = [
    *_conv_module(r"auxiliary_head\.convs\.0", "aux_heads.aux.block"),
    (r"auxiliary_head\.conv_seg\.(.*)", r"aux_heads.aux.classifier.\1"),
]

_PSPNET: list[Rule] = [
    *_conv_module(r"decode_head\.psp_modules\.(\d)\.1", r"head.ppm.stages.\1.1"),
    *_conv_module(r"decode_head\.bottleneck", "head.block"),
    (r"decode_head\.conv_seg\.(.*)", r"head.classifier.\1"),
    *_AUX,
]

# Semantic FPN: mmseg's FPN neck (lateral 1x1 and output 3x3 convs, with bias) and FPNHead, whose
# scale heads interleave ConvModules (even indices) with 2x upsamplings (odd indices).
_FPN: list[Rule] = [
    (r"neck\.lateral_convs\.(\d)\.conv\.(.*)", r"head.fpn.lateral.\1.\2"),
    (r"neck\.fpn_convs\.(\d)\.conv\.(.*)", r"head.fpn.output.\1.\2"),
    *(
        rule
        for index in (0, 2, 4)
        for rule in _conv_module(rf"decode_head\.scale_heads\.(\d)\.{index}", rf"head.scale_heads.\1.{index // 2}")
    ),
    (r"decode_head\.conv_seg\.(.*)", r"head.classifier.\1"),
]

# mmseg's FCNHead of the -d8 FCNs: two 3x3 ConvModules, then ``conv_cat`` over [input, convs out]
# (semseg's FCNHead with ``num_convs=2, concat_input=True``).
_FCN: list[Rule] = [
    *_conv_module(r"decode_head\.convs\.(\d)", r"head.convs.\1"),
    *_conv_module(r"decode_head\.conv_cat", "head.concat"),
    (r"decode_head\.conv_seg\.(.*)", r"head.classifier.\1"),
    *_AUX,
]

# mmseg's ASPPHead: image pooling first in the concatenation, then the 1x1 and three 3x3
# branches (512 channels), then a 3x3 ``bottleneck`` over the concatenation (semseg's ASPP with
# ``channels=512, project_kernel=3``; its projection is 1x1 by default).
_ASPP: list[Rule] = [
    *_conv_module(r"decode_head\.image_pool\.1", "head.aspp.branches.4.1"),
    *_conv_module(r"decode_head\.aspp_modules\.0", "head.aspp.branches.0"),
    *_conv_module(r"decode_head\.bottleneck", "head.aspp.project.0"),
]

_DEEPLABV3: list[Rule] = [
    *_ASPP,
    *_conv_module(r"decode_head\.aspp_modules\.([1-3])", r"head.aspp.branches.\1"),
    (r"decode_head\.conv_seg\.(.*)", r"head.classifier.\1"),
    *_AUX,
]


def _separable(source: str, target: str) -> list[Rule]:
    """mmseg's DepthwiseSeparableConvModule onto semseg's separable conv-BN-ReLU."""
    return [
        (rf"{source}\.depthwise_conv\.conv\.(?P<rest>.*)", rf"{target}.0.\g<rest>"),
        (rf"{source}\.depthwise_conv\.bn\.(?P<rest>.*)", rf"{target}.1.\g<rest>"),
        *_conv_module(rf"{source}\.pointwise_conv", rf"{target}.2"),
    ]


_DEEPLABV3PLUS: list[Rule] = [
    *_ASPP,
    *_separable(r"decode_head\.aspp_modules\.([1-3])", r"head.aspp.branches.\1"),
    *_conv_module(r"decode_head\.c1_bottleneck", "head.reduce"),
    *_separable(r"decode_head\.sep_bottleneck\.(\d)", r"head.refine.\1"),
    (r"decode_head\.conv_seg\.(.*)", r"head.classifier.\1"),
    *_AUX,
]


def _pool_last(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """mmseg concatenates [pool, b0, b1, b2, b3], semseg [b0, b1, b2, b3, pool]: move the first
    fifth of the bottleneck's input channels to the end."""
    key = "head.aspp.project.0.0.weight"
    if key not in tensors:
        return tensors
    weight = tensors[key]
    width = weight.shape[1] // 5
    return {**tensors, key: torch.cat([weight[:, width:], weight[:, :width]], dim=1)}


def _bn_pair(match: re.Match[str], prefix: str) -> str:
    """mmseg's ``convs.j.{conv,bn}`` -> semseg's ``double_conv`` Sequential index ``3j`` / ``3j + 1``
    (conv, BN, ReLU per convolution)."""
    index = 3 * int(match["j"]) + (match["layer"] == "bn")
    return f"{prefix}.{index}.{match['rest']}"


# U-Net with InterpConv decoders (fcn_unet_s5-d16). mmseg's encoder stage ``i`` is
# ``[MaxPool2d,] BasicConvBlock``; its ``decoder.k`` joins stage k and k + 1, so the deepest
# block, semseg's ``blocks.0``, is mmseg's ``decoder.3``.
_UNET_STAGES = 5
_CONVS = r"convs\.(?P<j>\d)\.(?P<layer>conv|bn)\.(?P<rest>.*)"
_UNET: list[Rule] = [
    (
        rf"backbone\.encoder\.(?P<i>\d)\.\d\.{_CONVS}",
        lambda m: _bn_pair(m, f"backbone.encoder.stages.{m['i']}"),
    ),
    (
        rf"backbone\.decoder\.(?P<k>\d)\.conv_block\.{_CONVS}",
        lambda m: _bn_pair(m, f"backbone.decoder.blocks.{_UNET_STAGES - 2 - int(m['k'])}.convs"),
    ),
    (
        r"backbone\.decoder\.(?P<k>\d)\.upsample\.interp_upsample\.1\.(?P<layer>conv|bn)\.(?P<rest>.*)",
        lambda m: (
            f"backbone.decoder.blocks.{_UNET_STAGES - 2 - int(m['k'])}.project.{int(m['layer'] == 'bn')}.{m['rest']}"
        ),
    ),
    *_conv_module(r"decode_head\.convs\.0", "head.block"),
    (r"decode_head\.conv_seg\.(.*)", r"head.classifier.\1"),
    *_AUX,
]

# mmseg's ResNetV1c -d8 layout on semseg's ResNet.
_RESNET_V1C_D8 = {"stem_width": 32, "dilate_first_block": False, "align_corners": False}

_HRNET: list[Rule] = [
    # The backbone's keys are HRNet's own in both (stage2..4, transition1..3, fuse_layers).
    *_conv_module(r"decode_head\.convs\.0", "head.mix"),
    (r"decode_head\.conv_seg\.(.*)", r"head.classifier.\1"),
]

_ENCNET: list[Rule] = [
    *_conv_module(r"decode_head\.bottleneck", "head.block"),
    *_conv_module(r"decode_head\.enc_module\.encoding_project", "head.encode.reduce"),
    (r"decode_head\.enc_module\.encoding\.0\.codewords", "head.encode.encoding.codewords"),
    (r"decode_head\.enc_module\.encoding\.0\.scale", "head.encode.encoding.smoothing"),
    (r"decode_head\.enc_module\.encoding\.1\.(.*)", r"head.encode.norm.\1"),
    (r"decode_head\.enc_module\.fc\.0\.(.*)", r"head.encode.fc.\1"),
    (r"decode_head\.se_layer\.(.*)", r"head.se_classifier.\1"),
    (r"decode_head\.conv_seg\.(.*)", r"head.classifier.\1"),
    *_AUX,
]


def _negate_smoothing(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """mmseg's (and PyTorch-Encoding's) ``scale`` multiplies the squared distance inside the
    softmax and is learned negative; semseg's ``smoothing`` enters as ``-smoothing * dist``."""
    key = "head.encode.encoding.smoothing"
    return {**tensors, key: -tensors[key]} if key in tensors else tensors


SPECS: dict[str, ModelSpec] = {}
for _depth in (50, 101):
    SPECS[f"pspnet_r{_depth}-d8"] = ModelSpec(
        model=f"pspnet_resnet{_depth}",
        options=_RESNET_V1C_D8,
        rules=_PSPNET,
        classifier="decode_head.conv_seg.weight",
        aux_prefix="auxiliary_head.",
        summary=f"mmseg pspnet_r{_depth}-d8: ResNetV1c deep stem, PPM 1/2/3/6, align_corners=False",
    )
    SPECS[f"encnet_r{_depth}-d8"] = ModelSpec(
        model=f"encnet_resnet{_depth}",
        options={"stem_width": 32, "align_corners": False, "lateral": False, "se_loss": True},
        rules=_ENCNET,
        fixes=(_negate_smoothing,),
        classifier="decode_head.conv_seg.weight",
        aux_prefix="auxiliary_head.",
        summary=f"mmseg encnet_r{_depth}-d8: ResNetV1c deep stem, 32 codewords, SE loss, no lateral",
    )
    _d8 = {"output_stride": 8, "multi_grid": None, "channels": 512, "project_kernel": 3}
    SPECS[f"fcn_r{_depth}-d8"] = ModelSpec(
        model=f"fcn_resnet{_depth}_d8",
        options={**_RESNET_V1C_D8, "deep_stem": True, "num_convs": 2, "concat_input": True, "channels": 512},
        rules=_FCN,
        classifier="decode_head.conv_seg.weight",
        aux_prefix="auxiliary_head.",
        summary=f"mmseg fcn_r{_depth}-d8: ResNetV1c, two 3x3 convs and conv_cat over the input",
    )
    SPECS[f"deeplabv3_r{_depth}-d8"] = ModelSpec(
        model=f"deeplabv3_resnet{_depth}",
        options={**_RESNET_V1C_D8, **_d8, "deep_stem": True, "head_form": "paper"},
        rules=_DEEPLABV3,
        fixes=(_pool_last,),
        classifier="decode_head.conv_seg.weight",
        aux_prefix="auxiliary_head.",
        summary=f"mmseg deeplabv3_r{_depth}-d8: ResNetV1c, 512-channel ASPP, 3x3 bottleneck",
    )
    SPECS[f"deeplabv3plus_r{_depth}-d8"] = ModelSpec(
        model=f"deeplabv3plus_resnet{_depth}",
        options={**_RESNET_V1C_D8, **_d8, "deep_stem": True, "separable": True, "depthwise_relu": True},
        rules=_DEEPLABV3PLUS,
        fixes=(_pool_last,),
        classifier="decode_head.conv_seg.weight",
        aux_prefix="auxiliary_head.",
        summary=f"mmseg deeplabv3plus_r{_depth}-d8: ResNetV1c, separable 512-channel ASPP and decoder",
    )
    # mmseg's FPNHead has batch norm in its scale stages where the paper (and semseg's default)
    # has GroupNorm: ``norm="batch"``.
    SPECS[f"fpn_r{_depth}"] = ModelSpec(
        model=f"fpn_resnet{_depth}",
        options={"dropout": 0.1, "deep_stem": True, "stem_width": 32, "norm": "batch"},
        rules=_FPN,
        classifier="decode_head.conv_seg.weight",
        summary=f"mmseg fpn_r{_depth}: ResNetV1c deep stem at OS32, FPN neck, FPNHead (128 channels)",
    )
# The padded, batch-normed U-Net with mmseg's InterpConv decoder and FCN heads (semseg's options
# are listed in ``semseg.models.zoo.unet``); no drop-out in the contracting path.
SPECS["fcn_unet_s5-d16"] = ModelSpec(
    model="unet",
    options={"batch_norm": True, "dropout_levels": 0, "upsample": "interp", "head_form": "fcn"},
    rules=_UNET,
    classifier="decode_head.conv_seg.weight",
    aux_prefix="auxiliary_head.",
    summary="mmseg fcn_unet_s5-d16: U-Net with BN, padded convs, bilinear + 1x1 conv up-sampling, FCN heads",
)
for _width in (18, 48):
    SPECS[f"fcn_hr{_width}"] = ModelSpec(
        model=f"hrnetv2_w{_width}",
        options={"head_bias": False, "align_corners": False},
        rules=_HRNET,
        classifier="decode_head.conv_seg.weight",
        summary=f"mmseg fcn_hr{_width}: HRNetV2-W{_width}, 1x1 conv-BN-ReLU head without bias, align_corners=False",
    )


def detect(keys: Mapping[str, tuple[int, ...]]) -> str | None:
    """The mmseg network of a state dict's keys and shapes, or ``None`` when they are not mmseg's."""
    if "decode_head.conv_seg.weight" not in keys:
        return None
    if "backbone.decoder.0.upsample.interp_upsample.1.conv.weight" in keys:
        # Before the head checks: mmseg's U-Net also comes with PSP and ASPP heads (its
        # unet-s5-d16_pspnet/_deeplabv3 configs), which semseg's unet does not have.
        return "fcn_unet_s5-d16" if "decode_head.convs.0.conv.weight" in keys else None
    depth = 101 if "backbone.layer3.22.conv1.weight" in keys else 50
    if "decode_head.psp_modules.0.1.conv.weight" in keys:
        return f"pspnet_r{depth}-d8"
    if "decode_head.c1_bottleneck.conv.weight" in keys:
        return f"deeplabv3plus_r{depth}-d8"
    if "decode_head.image_pool.1.conv.weight" in keys:
        return f"deeplabv3_r{depth}-d8"
    if "decode_head.conv_cat.conv.weight" in keys:
        return f"fcn_r{depth}-d8"
    if "decode_head.enc_module.encoding.0.codewords" in keys:
        return f"encnet_r{depth}-d8"
    if "neck.lateral_convs.0.conv.weight" in keys and "decode_head.scale_heads.0.0.conv.weight" in keys:
        return f"fpn_r{depth}"
    if "backbone.stage4.0.fuse_layers.0.1.0.weight" in keys:
        width = keys.get("backbone.transition1.0.0.weight", (18,))[0]  # the first branch's width
        return f"fcn_hr{width}" if f"fcn_hr{width}" in SPECS else None
    return None


def class_names(obj: Any) -> list[str] | None:
    """The class names an mmseg checkpoint stores: ``meta["dataset_meta"]["classes"]`` (1.x) or
    ``meta["CLASSES"]`` (the 0.x files the 1.x model zoo still links)."""
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return None
    dataset_meta = meta.get("dataset_meta")
    names = dataset_meta.get("classes") if isinstance(dataset_meta, dict) else meta.get("CLASSES")
    if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        return list(names)
    return None

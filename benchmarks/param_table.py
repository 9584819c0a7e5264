"""Parameter count of every registered model next to its published count and the count of the
reference code's model (the authors' release, or the library whose weights it takes).

Takes the published counts from :data:`PUBLISHED` below (``options`` are passed to
``create_model`` when the published network needs non-default options), builds each model with
that class count (21 where nothing is published) on the ``meta`` device (no memory, no time; CPU
if a model cannot be built there), counts its parameters and writes a markdown table.

Usage (from the repository root)::

    python benchmarks/param_table.py                       # writes docs/param_table.md
    python benchmarks/param_table.py --only "fcn*,unet*"    # fnmatch patterns, comma-separated
    python benchmarks/param_table.py --out /tmp/params.md
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path
from typing import Any

import torch

from semseg import create_model, list_models

HERE = Path(__file__).resolve().parent
TOLERANCE = 0.02  # the agreement the project asks for: within 2%
DEFAULT_CLASSES = 21


Entry = tuple[int, float | None, str, dict[str, Any]]

# name: (num_classes, published millions of parameters or None, source / note, create_model options).
# Models not listed have no published count to compare with (EfficientFCN's paper, for one,
# reports MACs and mIoU only); they are counted with DEFAULT_CLASSES.
PUBLISHED: dict[str, Entry] = {
    # Classic networks.
    "fcn32s_vgg16": (21, 134.0, "FCN paper Table 1 (FCN-VGG16); the fixed final upsampling is not a parameter", {}),
    "fcn16s_vgg16": (21, 134.0, "FCN paper: skips add ~0.02M to FCN-VGG16's 134M", {}),
    "fcn8s_vgg16": (21, 134.0, "FCN paper: skips add ~0.03M to FCN-VGG16's 134M", {}),
    "fcn32s_alexnet": (21, 57.0, "FCN paper Table 1 (FCN-AlexNet, Caffe reference AlexNet)", {}),
    "encdec_vgg16": (12, 29.46, "SegNet as counted in the ENet paper (Paszke et al. 2016, Table 3)", {}),
    "unet": (
        2,
        31.0,
        "the network of the U-Net paper's Fig. 1 with a grey-scale input; the paper states no count, 31.0M is "
        "the count usually quoted for it",
        {"in_channels": 1},
    ),
    # The paper gives no count for its semantic-segmentation-only model: listed for the class count.
    "fpn_resnet50": (19, None, "no count published in the paper", {}),
    "fpn_resnet101": (19, None, "no count published in the paper", {}),
    "deeplabv1_vgg16": (21, 20.5, "DeepLab v1 paper Table 2 (DeepLab-CRF-LargeFOV, kernel 3x3, rate 12)", {}),
    "deeplabv2_resnet101": (
        21,
        44.0,
        "DeepLab v2 ResNet-101 + ASPP-L (42.5M backbone + 4 x 3x3 2048->21 classifiers)",
        {},
    ),
    # Context networks.
    "pspnet_resnet101": (
        19,
        65.6,
        "PSPNet ResNet-101 (Cityscapes) without the aux head; 68.0M with aux_loss=True",
        {},
    ),
    "encnet_resnet101": (
        19,
        54.9,
        "EncNet ResNet-101 built with aux_loss=True (FCN aux on stage 3) and the SE branch (PyTorch-Encoding "
        "model zoo)",
        {"aux_loss": True},
    ),
    "hrnetv2_w48": (19, 65.8, "HRNetV2-W48 on Cityscapes, official HRNet-Semantic-Segmentation README", {}),
}


# name: (reference code's count in millions, how it was obtained, create_model options that build
# the reference's form when it is not the default). "built" counts were measured by building the
# reference implementation itself (outside this repository, in a scratch folder, random weights)
# with the class count of this table's row and counting ``sum(p.numel() for p in model.parameters())``
# on 2026-11-30; "computed" ones come from the reference's architecture where building it was not
# cheap (compiled extensions, Caffe, TensorFlow), as the note says.
REFERENCE: dict[str, tuple[float, str, dict[str, Any]]] = {
    "pspnet_resnet101": (
        65.707475,
        "built: hszhao/semseg model/pspnet.py PSPNet(layers=101, classes=19) less its aux head (68.072166 with "
        "it); outputs equal semseg's (rel. diff 0.0, ResNet-50, weights copied)",
        {},
    ),
    "pspnet_resnet50": (46.716373, "built: hszhao/semseg PSPNet(layers=50, classes=21) less its aux head", {}),
    "deeplabv2_resnet101": (
        44.048532,
        "built: kazuto1011/deeplab-pytorch DeepLabV2(n_blocks=[3, 4, 23, 3], rates 6/12/18/24)",
        {},
    ),
    "deeplabv2_resnet50": (
        25.056404,
        "built: kazuto1011/deeplab-pytorch DeepLabV2(n_blocks=[3, 4, 6, 3]); outputs equal semseg's (rel. diff "
        "0.0 at 65x65 and 67x67, weights copied)",
        {},
    ),
    "deeplabv3_resnet50": (
        39.638869,
        "built: torchvision deeplabv3_resnet50 (its 3x3 conv after the ASPP: semseg's head_form='torchvision'); "
        "the paper's TF form (semseg's default) has no such conv",
        {"head_form": "torchvision"},
    ),
    "deeplabv3_resnet101": (
        58.630997,
        "built: torchvision deeplabv3_resnet101 (semseg's head_form='torchvision')",
        {"head_form": "torchvision"},
    ),
    "fcn_resnet50_d8": (32.957013, "built: torchvision fcn_resnet50", {}),
    "fcn_resnet101_d8": (51.949141, "built: torchvision fcn_resnet101", {}),
    "hrnetv2_w48": (
        65.859379,
        "built: HRNet-Semantic-Segmentation seg_hrnet.py with its Cityscapes W48 config (the head conv's bias "
        "included)",
        {},
    ),
    "hrnetv2_w32": (29.547477, "built: official seg_hrnet.py, the W48 config with widths 32/64/128/256", {}),
    "hrnetv2_w18": (
        9.641661,
        "built: official seg_hrnet.py, the W48 config with widths 18/36/72/144; outputs equal semseg's (rel. "
        "diff 0.0 at 64x72 and 97x105, weights copied)",
        {},
    ),
    "encnet_resnet101": (
        54.988633,
        "built: PyTorch-Encoding encoding/models/sseg/encnet.py EncNet(19, 'resnet101s', aux=True, se_loss=True) "
        "with its two compiled kernels (scaled_l2, aggregate) replaced by their documented formulas; with "
        "lateral=True (ResNet-50) its outputs equal semseg's (rel. diff 1.8e-7 logits, 3.5e-7 SE, 0 aux)",
        {},
    ),
    "encnet_resnet50": (33.633866, "built: PyTorch-Encoding EncNet(21, 'resnet50s', aux=False), as above", {}),
    "efficientfcn_resnet50": (
        31.161205,
        "built: jianbo909/efficientFCN efficientFCN(21, 'resnet50') less its backbone's unused ImageNet fc "
        "(2.049M); two unused imports stubbed; outputs equal semseg's (rel. diff 0.0 at 64x64 and 96x96)",
        {},
    ),
    "efficientfcn_resnet101": (
        50.153333,
        "built: jianbo909/efficientFCN efficientFCN(21, 'resnet101') less its backbone's unused fc",
        {},
    ),
}


# Reference implementations not built here, and what their architecture gives.
COMPUTED_REFERENCE: dict[str, str] = {
    "deeplabv3plus_*": "the TF release (tensorflow/models research/deeplab) was not built; semseg's defaults have "
    "its layers except that its MobileNetV2 decoder reads layer_4's 144-channel depthwise output (semseg: the "
    "24-channel stride-4 block output), a 1x1 conv of 144 instead of 24 input channels.",
    "deeplabv1_vgg16": "Caffe (DeepLab-LargeFOV train.prototxt): pool5a and dropout have no parameters; "
    "the count is semseg's, 20.5M as the paper.",
    "fcn*s_vgg16": "Caffe (voc-fcn*/net.py): its fixed 2x deconvolutions (lr_mult 0) are blobs there, buffers here "
    "(C x C x 4 x 4 each, 8,820 values for 21 classes); everything else is counted alike.",
    "unet": "Caffe release (phseg_v5): dropout and the ReLUs after the up-convolutions have no parameters; same "
    "count as semseg's.",
    "fpn_resnet50/101": "detectron2 (SemSegFPNHead) was not built; its ResNet's FrozenBatchNorm2d affine values "
    "are buffers there, so its parameter count is semseg's less the backbone's BatchNorm weights and biases.",
}


def count_params(name: str, num_classes: int, options: dict[str, Any] | None = None) -> int:
    """Parameters of ``create_model(name, num_classes, **options)``, built on ``meta`` when possible."""
    try:
        with torch.device("meta"):
            model = create_model(name, num_classes=num_classes, **(options or {}))
    except Exception:  # a builder doing real arithmetic at construction
        model = create_model(name, num_classes=num_classes, **(options or {}))
    return sum(p.numel() for p in model.parameters())


def rows(patterns: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per registered model (matching ``patterns``): our count, the published one and their difference."""
    out = []
    for name in list_models():
        if patterns and not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        classes, millions, note, options = PUBLISHED.get(name, (DEFAULT_CLASSES, None, "", {}))
        ours = count_params(name, classes, options) / 1e6
        if options:
            note = f"built with {', '.join(f'{k}={v!r}' for k, v in options.items())}; {note}"
        diff = None if millions is None else 100 * (ours - millions) / millions
        if diff is not None and abs(diff) > 100 * TOLERANCE:
            note = f"DIFFERS by more than {100 * TOLERANCE:.0f}%: {note}"
        reference, ref_note, ref_options = REFERENCE.get(name, (None, "", {}))
        ours_as_ref = count_params(name, classes, {**options, **ref_options}) / 1e6 if ref_options else ours
        if ref_options:
            ref_note = f"{ref_note}; ours with {', '.join(f'{k}={v!r}' for k, v in ref_options.items())}"
        ref_diff = None if reference is None else 100 * (ours_as_ref - reference) / reference
        out.append(
            {
                "name": name,
                "classes": classes,
                "ours": ours,
                "published": millions,
                "diff": diff,
                "reference": reference,
                "ours_as_ref": ours_as_ref,
                "ref_diff": ref_diff,
                "ref_note": ref_note,
                "note": note,
            }
        )
    return out


def markdown(table: list[dict[str, Any]], command: str) -> str:
    lines = [
        "# Parameter counts",
        "",
        f"Generated by `{command}` (do not edit by hand). Counts are of `create_model(name, num_classes=classes)` with",
        "default options unless the note names others; *published* is the count the paper (or the source in the note) gives for that class",
        f"count. Models without a published count are listed with {DEFAULT_CLASSES} classes.",
        "",
        "*reference* is the parameter count of the reference code's model (the authors' release, or the library",
        "whose weights semseg loads), counted by building that code outside this repository with random weights",
        "(exact to the parameter, in millions with 6 decimals); *ours as ref.* is semseg's count with the options",
        "that build the reference's form (the default unless the reference note names options). Networks whose",
        "reference could not be built cheaply are listed after the table with their count computed from the",
        "architecture.",
        "",
        "| model | classes | ours (M) | published (M) | diff % | reference (M) | ours as ref. (M) | ref. diff % "
        "| reference | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in table:
        pub = "—" if r["published"] is None else f"{r['published']:.2f}"
        diff = "—" if r["diff"] is None else f"{r['diff']:+.2f}"
        ref = "—" if r["reference"] is None else f"{r['reference']:.6f}"
        as_ref = "—" if r["reference"] is None else f"{r['ours_as_ref']:.6f}"
        ref_diff = "—" if r["ref_diff"] is None else f"{r['ref_diff']:+.4f}"
        lines.append(
            f"| {r['name']} | {r['classes']} | {r['ours']:.2f} | {pub} | {diff} | {ref} | {as_ref} | {ref_diff} "
            f"| {r['ref_note']} | {r['note']} |"
        )
    lines += ["", "## References not built (count computed from the architecture)", ""]
    lines += [f"- **{name}**: {text}" for name, text in COMPUTED_REFERENCE.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated fnmatch patterns of model names")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "param_table.md")
    args = parser.parse_args()
    patterns = [p for p in args.only.split(",") if p] or None
    table = rows(patterns)
    text = markdown(table, " ".join(["python benchmarks/param_table.py", *sys.argv[1:]]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    bad = [r["name"] for r in table if r["diff"] is not None and abs(r["diff"]) > 100 * TOLERANCE]
    if bad:
        print(f"{len(bad)} model(s) differ from the published count by more than 2%: {', '.join(bad)}")


if __name__ == "__main__":
    main()

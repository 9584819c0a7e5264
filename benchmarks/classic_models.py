"""The classic networks (naive convnet, FCN, encoder-decoder, U-Net, Semantic FPN, DeepLab v1/v2)
side by side with torchvision's ``fcn_resnet50`` in the same run.

Every model is timed in its own fresh Python process (``semseg.bench.measure_in_subprocess``) with
the shared :func:`semseg.bench.time_model`: a train step (forward, cross-entropy, backward, SGD
step) and a no-grad inference forward in eval mode, at ``--size`` with ``--batch`` images, median
of ``--iters`` timed calls after ``--warmup``. Peak memory is the process's peak resident set on
CPU (it includes Python and torch themselves; the "at start" column is the resident set once the
model is built) and ``torch.cuda.max_memory_allocated`` on CUDA. All weights are random; nothing
is downloaded.

Usage (from the repository root)::

    python benchmarks/classic_models.py                        # 512x512, batch 1, writes docs/bench_classic.md
    python benchmarks/classic_models.py --device cuda --batch 4
    python benchmarks/classic_models.py --quick --out /tmp/t.md # 64x64, one iteration: check that all run
    python benchmarks/classic_models.py --only fcn8s_vgg16,unet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from timing import add_timing_args, measure_in_subprocess, measured_header, prepare_subprocesses, write_table  # noqa: E402

NUM_CLASSES = 21
REFERENCE = "torchvision fcn_resnet50"

# (row label, configuration, builder kwargs for :func:`build`)
ENTRIES: list[tuple[str, str, dict[str, Any]]] = [
    (REFERENCE, "dilated ResNet-50 (OS8) + FCNHead, no aux", {"lib": "tv"}),
    ("naive_convnet", "8 full-resolution 3x3 convs, width 64", {"name": "naive_convnet"}),
    ("fcn32s_vgg16", "pad 100 + crop (paper)", {"name": "fcn32s_vgg16"}),
    ("fcn16s_vgg16", "pad 100 + crop (paper)", {"name": "fcn16s_vgg16"}),
    ("fcn8s_vgg16", "pad 100 + crop (paper)", {"name": "fcn8s_vgg16"}),
    ("fcn8s_vgg16", "padding='same'", {"name": "fcn8s_vgg16", "padding": "same"}),
    ("fcn32s_alexnet", "Caffe AlexNet, pad 100", {"name": "fcn32s_alexnet"}),
    ("encdec_vgg16", "SegNet: unpooling with indices", {"name": "encdec_vgg16"}),
    ("encdec_vgg16", "upsample='deconv'", {"name": "encdec_vgg16", "upsample": "deconv"}),
    ("unet", "same padding, 3 input channels", {"name": "unet", "num_classes": NUM_CLASSES}),
    ("unet_resnet34", "ResNet-34 + U-Net decoder", {"name": "unet_resnet34"}),
    ("fpn_resnet50", "Semantic FPN", {"name": "fpn_resnet50"}),
    ("fpn_resnet101", "Semantic FPN", {"name": "fpn_resnet101"}),
    ("deeplabv1_vgg16", "LargeFOV (OS8)", {"name": "deeplabv1_vgg16"}),
    ("deeplabv1_vgg16", "LargeFOV + MSc", {"name": "deeplabv1_vgg16", "msc": True}),
    ("deeplabv2_resnet50", "OS8, ASPP-L 6/12/18/24", {"name": "deeplabv2_resnet50"}),
    ("deeplabv2_resnet101", "OS8, ASPP-L 6/12/18/24", {"name": "deeplabv2_resnet101"}),
]


def build(lib: str = "semseg", name: str = "", num_classes: int = NUM_CLASSES, **options: Any) -> torch.nn.Module:
    """Build one entry with random weights (runs inside the timing subprocess)."""
    if lib == "tv":
        import torchvision

        return torchvision.models.segmentation.fcn_resnet50(
            weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False
        )
    from semseg import create_model

    return create_model(name, num_classes=num_classes, **options)


def _params(kwargs: dict[str, Any]) -> float:
    with torch.device("meta"):
        return sum(p.numel() for p in build(**kwargs).parameters()) / 1e6


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    timing = prepare_subprocesses(args, NUM_CLASSES, HERE)
    only = set(args.only.split(",")) if args.only else None
    rows = []
    for label, config, kwargs in ENTRIES:
        if only and label not in only and label != REFERENCE:
            continue
        row: dict[str, Any] = {"model": label, "config": config, "params": _params(kwargs)}
        try:
            row |= measure_in_subprocess("classic_models:build", {"build": kwargs, "time": timing})
        except RuntimeError as err:
            row["error"] = str(err)
        rows.append(row)
        print(_line(row, rows[0]), flush=True)
    return rows


def _line(r: dict[str, Any], ref: dict[str, Any]) -> str:
    if "error" in r:
        return f"| {r['model']} | {r['config']} | {r['params']:.1f} | failed: {r['error']} | | | | | |"
    vs = ""
    if "error" not in ref and "train_ips" in ref:
        vs = f"{r['train_ips'] / ref['train_ips']:.2f} / {r['infer_ips'] / ref['infer_ips']:.2f}"
    start = r.get("model_mem_mb", float("nan"))
    return (
        f"| {r['model']} | {r['config']} | {r['params']:.1f} | {r['train_ips']:.3f} | {r['infer_ips']:.3f} | "
        f"{r['peak_mem_mb']:.0f} | {start:.0f} | {vs} |"
    )


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    mem = "peak RSS of the process" if args.device == "cpu" else "torch.cuda.max_memory_allocated"
    head = [
        *measured_header(args, NUM_CLASSES, "classic_models.py"),
        f"Peak memory: {mem}, in MiB; 'at start' is the resident set once the model is built (CPU only).",
        "",
        "| model | configuration | params (M) | train img/s | infer img/s | peak mem (MiB) | at start (MiB) | "
        f"vs {REFERENCE} (train / infer) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(head + [_line(r, rows[0]) for r in rows]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_args(parser, batch=1, out=HERE.parent / "docs" / "bench_classic.md")
    parser.add_argument("--only", default="", help=f"comma-separated model names ({REFERENCE} always runs)")
    args = parser.parse_args()
    rows = run(args)
    text = markdown(rows, args)
    write_table(args.out, text)
    print(text)


if __name__ == "__main__":
    main()

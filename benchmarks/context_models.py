"""Context networks side by side with segmentation_models_pytorch and torchvision.

Every model is timed in its own fresh Python process (``semseg.bench.measure_in_subprocess``)
with the shared :func:`semseg.bench.time_model`: a train step (forward, cross-entropy,
backward, SGD step) and a no-grad inference forward, both at ``--size`` with ``--batch`` images,
median of ``--iters`` timed calls after ``--warmup``. Peak memory is the process's peak resident
set on CPU (``torch.cuda.max_memory_allocated`` on CUDA).

Peers (random weights, no download): torchvision ``deeplabv3_resnet50`` and smp ``DeepLabV3``,
``DeepLabV3Plus`` and ``PSPNet`` on ResNet-50. Each row names its configuration, because the
libraries' defaults differ (see ``docs/bench_context.md``).

Usage (from the repository root; needs ``pip install --no-deps segmentation-models-pytorch timm``)::

    python benchmarks/context_models.py                      # 512x512, batch 2, writes docs/bench_context.md
    python benchmarks/context_models.py --quick --out /tmp/t.md   # 64x64 smoke run
    python benchmarks/context_models.py --only deeplabv3,pspnet
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from timing import measure_in_subprocess  # noqa: E402

NUM_CLASSES = 19

# (architecture, implementation, configuration, comparison group, builder kwargs for :func:`build`,
# extra: only with --all).
# Rows of one group are the same design in different libraries; "vs fastest peer" compares within it.
ENTRIES: list[tuple[str, str, str, str, dict[str, Any], bool]] = [
    ("deeplabv3", "torchvision", "OS8, ASPP 12/24/36", "dlv3", {"lib": "tv"}, False),
    ("deeplabv3", "smp", "OS8, ASPP 12/24/36", "dlv3", {"lib": "smp", "arch": "DeepLabV3"}, False),
    (
        "deeplabv3",
        "semseg",
        "OS8, multi-grid 1/2/4, ASPP 12/24/36",
        "dlv3",
        {"name": "deeplabv3_resnet50", "output_stride": 8},
        False,
    ),
    ("deeplabv3", "semseg", "OS16 (our default), ASPP 6/12/18", "", {"name": "deeplabv3_resnet50"}, True),
    (
        "deeplabv3plus",
        "smp",
        "OS16, separable ASPP, 1 separable decoder conv",
        "dlv3p",
        {"lib": "smp", "arch": "DeepLabV3Plus"},
        False,
    ),
    (
        "deeplabv3plus",
        "semseg",
        "OS16, separable ASPP, 2 separable decoder convs",
        "dlv3p",
        {"name": "deeplabv3plus_resnet50", "separable": True},
        False,
    ),
    ("deeplabv3plus", "semseg", "OS16, plain convs (our default)", "", {"name": "deeplabv3plus_resnet50"}, True),
    ("pspnet", "smp", "smp default: 3 stages to 1/8, no dilation", "", {"lib": "smp", "arch": "PSPNet"}, True),
    ("pspnet", "smp", "OS8 (make_dilated), 7x7 stem, 1x1 bottleneck", "psp", {"lib": "smp_psp_os8"}, False),
    (
        "pspnet",
        "semseg",
        "OS8, 7x7 stem, 1x1 bottleneck",
        "psp",
        {"name": "pspnet_resnet50", "deep_stem": False, "bottleneck_kernel": 1},
        False,
    ),
    ("pspnet", "semseg", "OS8, deep stem, 3x3 bottleneck (paper, our default)", "", {"name": "pspnet_resnet50"}, False),
    ("encnet", "semseg", "OS8, deep stem, K=32, SE branch", "", {"name": "encnet_resnet50"}, False),
    ("efficientfcn", "semseg", "OS32, 256 codewords", "", {"name": "efficientfcn_resnet50"}, False),
    ("hrnetv2", "semseg", "W18", "", {"name": "hrnetv2_w18"}, False),
    ("hrnetv2", "semseg", "W32", "", {"name": "hrnetv2_w32"}, True),
    ("hrnetv2", "semseg", "W48", "", {"name": "hrnetv2_w48"}, False),
]


def build(lib: str = "semseg", arch: str = "", name: str = "", **options: Any) -> torch.nn.Module:
    """Build one benchmark entry with random weights (runs inside the timing subprocess)."""
    if lib == "tv":
        import torchvision

        return torchvision.models.segmentation.deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=NUM_CLASSES
        )
    if lib in ("smp", "smp_psp_os8"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import segmentation_models_pytorch as smp

        if lib == "smp_psp_os8":
            model = smp.PSPNet("resnet50", encoder_weights=None, classes=NUM_CLASSES, encoder_depth=5, upsampling=8)
            model.encoder.make_dilated(output_stride=8)
            return model
        return getattr(smp, arch)("resnet50", encoder_weights=None, classes=NUM_CLASSES)
    from semseg import create_model

    return create_model(name, num_classes=NUM_CLASSES, **options)


def _params(kwargs: dict[str, Any]) -> float:
    return sum(p.numel() for p in build(**kwargs).parameters()) / 1e6


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    # The subprocesses import this file as ``context_models`` and inherit the thread setting.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    only = set(args.only.split(",")) if args.only else None
    timing = {"size": [args.size, args.size], "batch": args.batch, "device": args.device}
    timing |= {"warmup": args.warmup, "iters": args.iters, "num_classes": NUM_CLASSES}
    rows = []
    for arch, impl, config, group, kwargs, extra in ENTRIES:
        if (only and arch not in only) or (extra and not args.all):
            continue
        row: dict[str, Any] = {"arch": arch, "impl": impl, "config": config, "group": group}
        row["params"] = _params(kwargs)
        try:
            row |= measure_in_subprocess("context_models:build", {"build": kwargs, "time": timing})
        except RuntimeError as err:
            row["error"] = str(err)
        print(_line(row), flush=True)
        rows.append(row)
    return rows


def _line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"| {r['arch']} | {r['impl']} | {r['config']} | {r['params']:.1f} | failed: {r['error']} | | | |"
    if r["impl"] == "semseg" and not r["group"]:
        r.setdefault("vs_peer", "no like-for-like peer")
    return (
        f"| {r['arch']} | {r['impl']} | {r['config']} | {r['params']:.1f} | {r['train_ips']:.3f} | "
        f"{r['infer_ips']:.3f} | {r['peak_mem_mb']:.0f} | {r.get('vs_peer', '')} |"
    )


def compare_to_peers(rows: list[dict[str, Any]]) -> None:
    """Add ``vs_peer``: our train/infer speed over the fastest peer of the same comparison group."""
    for group in {r["group"] for r in rows if r["group"]}:
        peers = [r for r in rows if r["group"] == group and r["impl"] != "semseg" and "error" not in r]
        if not peers:
            continue
        best_train = max(p["train_ips"] for p in peers)
        best_infer = max(p["infer_ips"] for p in peers)
        for r in rows:
            if r["group"] == group and r["impl"] == "semseg" and "error" not in r:
                r["vs_peer"] = f"{r['train_ips'] / best_train:.2f} / {r['infer_ips'] / best_infer:.2f}"


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    threads = args.threads or torch.get_num_threads()
    head = [
        f"Measured {when} on {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"device `{args.device}`, {threads} threads, torch {torch.__version__}.",
        f"Input {args.size}x{args.size}, batch {args.batch}, {NUM_CLASSES} classes, warmup {args.warmup}, "
        f"median of {args.iters}. Command: `python benchmarks/context_models.py {' '.join(sys.argv[1:])}`.",
        "",
        "| architecture | implementation | configuration | params (M) | train img/s | infer img/s | "
        "peak mem (MiB) | vs fastest peer (train / infer) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(head + [_line(r) for r in rows]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2, help="2: DeepLab's image pooling BN cannot train on 1")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="OMP threads per run (0: torch default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default="", help="comma-separated architectures, e.g. deeplabv3,pspnet")
    parser.add_argument("--all", action="store_true", help="also the extra rows (other defaults, HRNet-W32)")
    parser.add_argument("--quick", action="store_true", help="64x64, 1 iteration: check that everything runs")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "bench_context.md")
    args = parser.parse_args()
    if args.quick:
        args.size, args.warmup, args.iters = 64, 1, 1
    rows = run(args)
    compare_to_peers(rows)
    text = markdown(rows, args)
    write_table(args.out, text)
    print(text)


def write_table(path: Path, table: str) -> None:
    """Replace the text between ``<!-- table -->`` and ``<!-- /table -->`` (so the discussion
    around it stays), or write the table alone if the file has no markers."""
    start, end = "<!-- table -->", "<!-- /table -->"
    old = path.read_text() if path.is_file() else ""
    if start in old and end in old:
        table = old.split(start)[0] + f"{start}\n{table}{end}" + old.split(end, 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table)


if __name__ == "__main__":
    main()

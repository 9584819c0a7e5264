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
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from semseg.models.registry import default_channels_last

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from timing import add_timing_args, measure_in_subprocess, measured_header, prepare_subprocesses, write_table  # noqa: E402

NUM_CLASSES = 19
NHWC_BY_HAND = "model.to(memory_format=torch.channels_last) by hand"


@dataclass(frozen=True)
class Entry:
    """One benchmark row. Rows of one ``group`` are the same design built by different
    libraries (the "vs fastest peer" columns compare within it); ``extra`` rows run with --all."""

    arch: str
    impl: str
    config: str
    build: dict[str, Any]
    group: str = ""
    extra: bool = False

    @property
    def nhwc(self) -> bool:
        """Whether the row runs channels-last: semseg's per-model default unless the row sets
        it; a peer only when asked."""
        if "channels_last" in self.build:
            return bool(self.build["channels_last"])
        return self.impl == "semseg" and default_channels_last(self.build["name"])


def _peer_pair(arch: str, impl: str, config: str, build: dict[str, Any], group: str) -> list[Entry]:
    """A peer as it ships, and the same peer converted to channels-last by hand."""
    return [
        Entry(arch, impl, config, build, group),
        Entry(arch, impl, f"{config}; {NHWC_BY_HAND}", build | {"channels_last": True}, group),
    ]


def _ours(arch: str, config: str, build: dict[str, Any], group: str = "", other_layout: bool = True) -> list[Entry]:
    """Ours as it ships (its default layout named), then the same model in the other layout
    (an --all extra unless it has a comparison group)."""
    nhwc = default_channels_last(build["name"])
    shipped = Entry(arch, "semseg", f"{config}; {'NHWC' if nhwc else 'NCHW'} (default)", build, group)
    other = Entry(arch, "semseg", f"{config}; channels_last={not nhwc}", build | {"channels_last": not nhwc}, group)
    return [shipped, dataclasses.replace(other, extra=not group)] if other_layout else [shipped]


DLV3 = {"name": "deeplabv3_resnet50", "output_stride": 8}
DLV3P_LIGHT = {"name": "deeplabv3plus_resnet50", "separable": True, "decoder_convs": 1}
PSP_LIGHT = {"name": "pspnet_resnet50", "deep_stem": False, "bottleneck_kernel": 1}
SMP_DLV3P = "OS16, separable ASPP, 1 separable decoder conv"
ENTRIES: list[Entry] = [
    *_peer_pair("deeplabv3", "torchvision", "OS8, ASPP 12/24/36", {"lib": "tv"}, "dlv3"),
    *_peer_pair("deeplabv3", "smp", "OS8, ASPP 12/24/36", {"lib": "smp", "arch": "DeepLabV3"}, "dlv3"),
    *_ours("deeplabv3", "OS8, multi-grid 1/2/4, ASPP 12/24/36", DLV3, "dlv3"),
    *_ours("deeplabv3", "OS16, ASPP 6/12/18 (our default)", {"name": "deeplabv3_resnet50"}, other_layout=False),
    *_peer_pair("deeplabv3plus", "smp", SMP_DLV3P, {"lib": "smp", "arch": "DeepLabV3Plus"}, "dlv3p"),
    *_ours("deeplabv3plus", "OS16, separable ASPP, decoder_convs=1", DLV3P_LIGHT, "dlv3p"),
    *_ours(
        "deeplabv3plus",
        "OS16, separable ASPP, 2 separable decoder convs (paper)",
        {"name": "deeplabv3plus_resnet50", "separable": True},
        other_layout=False,
    ),
    *_ours("deeplabv3plus", "OS16, plain convs (our default)", {"name": "deeplabv3plus_resnet50"}, other_layout=False),
    Entry("pspnet", "smp", "smp default: 3 stages to 1/8, no dilation", {"lib": "smp", "arch": "PSPNet"}, extra=True),
    *_peer_pair("pspnet", "smp", "OS8 (make_dilated), 7x7 stem, 1x1 bottleneck", {"lib": "smp_psp_os8"}, "psp"),
    *_ours("pspnet", "OS8, 7x7 stem, 1x1 bottleneck", PSP_LIGHT, "psp"),
    *_ours("pspnet", "OS8, deep stem, 3x3 bottleneck (paper, our default)", {"name": "pspnet_resnet50"}),
    *_ours("encnet", "OS8, deep stem, K=32, SE branch", {"name": "encnet_resnet50"}),
    *_ours("efficientfcn", "OS32, 256 codewords", {"name": "efficientfcn_resnet50"}),
    *_ours("hrnetv2", "W18", {"name": "hrnetv2_w18"}),
    *_ours("hrnetv2", "W48", {"name": "hrnetv2_w48"}),
]


def build(lib: str = "semseg", arch: str = "", name: str = "", **options: Any) -> torch.nn.Module:
    """Build one benchmark entry with random weights (runs inside the timing subprocess)."""
    if lib == "semseg":
        from semseg import create_model

        return create_model(name, num_classes=NUM_CLASSES, **options)
    model = _peer(lib, arch)
    if options.pop("channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    return model


def _peer(lib: str, arch: str) -> torch.nn.Module:
    if lib == "tv":
        import torchvision

        return torchvision.models.segmentation.deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=NUM_CLASSES
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import segmentation_models_pytorch as smp

    if lib == "smp_psp_os8":
        model = smp.PSPNet("resnet50", encoder_weights=None, classes=NUM_CLASSES, encoder_depth=5, upsampling=8)
        model.encoder.make_dilated(output_stride=8)
        return model
    return getattr(smp, arch)("resnet50", encoder_weights=None, classes=NUM_CLASSES)


def _params(kwargs: dict[str, Any]) -> float:
    return sum(p.numel() for p in build(**kwargs).parameters()) / 1e6


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    timing = prepare_subprocesses(args, NUM_CLASSES, HERE)
    only = set(args.only.split(",")) if args.only else None
    impls = set(args.impl.split(",")) if args.impl else None
    rows = []
    for entry in ENTRIES:
        if (only and entry.arch not in only) or (impls and entry.impl not in impls) or (entry.extra and not args.all):
            continue
        row: dict[str, Any] = {"entry": entry, "params": _params(entry.build)}
        try:
            row |= measure_in_subprocess("context_models:build", {"build": entry.build, "time": timing})
        except RuntimeError as err:
            row["error"] = str(err)
        print(_line(row), flush=True)
        rows.append(row)
    return rows


def _line(r: dict[str, Any]) -> str:
    e: Entry = r["entry"]
    head = f"| {e.arch} | {e.impl} | {e.config} | {r['params']:.1f} |"
    if "error" in r:
        return f"{head} failed: {r['error']} | | | | |"
    if e.impl == "semseg" and not e.group:
        r.setdefault("vs_shipped", "no like-for-like peer")
    return (
        f"{head} {r['train_ips']:.3f} | {r['infer_ips']:.3f} | {r['peak_mem_mb']:.0f} | "
        f"{r.get('vs_shipped', '')} | {r.get('vs_layout', '')} |"
    )


def compare_to_peers(rows: list[dict[str, Any]]) -> None:
    """Add our train / infer speed over the fastest peer of the same comparison group:
    ``vs_shipped`` against the peers as they ship (NCHW), ``vs_layout`` against the peers in
    this row's own memory layout (NHWC peers converted by hand, or NCHW)."""
    ok = [r for r in rows if "error" not in r]
    for r in ok:
        e: Entry = r["entry"]
        if e.impl != "semseg" or not e.group:
            continue
        peers = [p for p in ok if p["entry"].group == e.group and p["entry"].impl != "semseg"]
        for key, wanted in (("vs_shipped", False), ("vs_layout", e.nhwc)):
            chosen = [p for p in peers if p["entry"].nhwc == wanted]
            if chosen:
                best_train = max(p["train_ips"] for p in chosen)
                best_infer = max(p["infer_ips"] for p in chosen)
                r[key] = f"{r['train_ips'] / best_train:.2f} / {r['infer_ips'] / best_infer:.2f}"


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    head = [
        *measured_header(args, NUM_CLASSES, "context_models.py"),
        "",
        "| architecture | implementation | configuration | params (M) | train img/s | infer img/s | "
        "peak mem (MiB) | vs fastest peer as shipped (train / infer) | vs fastest peer, same layout |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(head + [_line(r) for r in rows]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Batch 2: DeepLab's image-pooling BN cannot train on one image.
    add_timing_args(parser, batch=2, out=HERE.parent / "docs" / "bench_context.md")
    parser.add_argument("--only", default="", help="comma-separated architectures, e.g. deeplabv3,pspnet")
    parser.add_argument("--impl", default="", help="comma-separated implementations, e.g. semseg (layout checks)")
    parser.add_argument(
        "--all",
        action="store_true",
        help="also the extra rows (smp's default PSPNet, the other layout of unpaired models)",
    )
    args = parser.parse_args()
    rows = run(args)
    compare_to_peers(rows)
    text = markdown(rows, args)
    write_table(args.out, text)
    print(text)


if __name__ == "__main__":
    main()

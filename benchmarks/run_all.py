"""One benchmark suite, one command: every speed table of semseg next to its peers, written to
``docs/benchmarks.md``.

    python benchmarks/run_all.py                          # everything, CPU (and CUDA when present)
    python benchmarks/run_all.py --quick --out /tmp/b.md  # smoke test: tiny sizes, one repeat
    python benchmarks/run_all.py --sections crf,data --archs deeplabv3,fcn

Sections (``--sections``): ``models`` (semseg vs torchvision / segmentation_models_pytorch: train
step images/s, inference latency at batch 1, throughput at batch 8, peak memory; on CPU also
semseg's ONNX export in ONNX Runtime), ``runtimes`` (the shipped CamVid network in the PyTorch fast
path, bf16, ``torch.compile`` and ONNX Runtime: benchmarks/runtimes.py), ``confusion``
(confusion matrix vs torchmetrics), ``crf`` (dense CRF vs pydensecrf2, idle and with one competing
busy process started by this script), ``slide`` (sliding window, batched tiles vs one at a time),
``data`` (decode + paired augmentation per worker on real CamVid vs torchvision's reference
segmentation transforms, reimplemented here with Pillow as that reference does them).

Every table runs its compared rows interleaved (A, B, C, A, B, C, ...) in the same process, so
load from other processes hits all of them alike, reports the median, and prints the ratio to
the peer with the goal it is held to; a missed goal says "MISSED". Peers that are not installed
are skipped with a line saying so (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import suite_crf  # noqa: E402  (the dense CRF section: benchmarks/suite_crf.py)
import suite_data  # noqa: E402  (the data pipeline section: benchmarks/suite_data.py)
from suite_crf import busy_process, section_crf  # noqa: E402, F401
from suite_data import ReferenceTransforms, section_data  # noqa: E402, F401

SECTIONS = ("models", "runtimes", "confusion", "crf", "slide", "data")
GOALS = {
    "infer_shipped": 1.5,
    "infer_same": 1.2,
    "train": 1.1,
    "data": 1.5,
    "crf_idle": 1.5,
    "crf_loaded": 1.0,
}
NUM_CLASSES = 19
SLIDE_MODEL = "deeplabv3plus_mobilenetv2"
CAMVID = Path(os.environ.get("SEMSEG_CAMVID", ROOT.parent / "shared" / "data" / "camvid"))


# ----------------------------------------------------------------------------- timing helpers


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function, the functions called in turn ``repeats`` times."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median(ts: list[float]) -> float:
    return statistics.median(ts)


def verdict(ratio: float, goal: float) -> str:
    return f"{ratio:.2f}x (goal {goal:.1f}x: {'met' if ratio >= goal else 'MISSED'})"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Arch:
    """One architecture both semseg and a peer build, with the same encoder and output stride."""

    key: str
    title: str
    semseg: dict[str, Any]
    peer: str  # "tv:<fn>" or "smp:<Class>:<encoder>[:os8]"
    note: str = ""


ARCHS = [
    Arch(
        "deeplabv3",
        "DeepLabv3 ResNet-50 OS8",
        {"name": "deeplabv3_resnet50", "output_stride": 8},
        "tv:deeplabv3_resnet50",
    ),
    Arch("fcn", "FCN ResNet-50 OS8", {"name": "fcn_resnet50_d8"}, "tv:fcn_resnet50"),
    Arch(
        "deeplabv3plus",
        "DeepLabv3+ ResNet-50 OS16",
        {"name": "deeplabv3plus_resnet50", "separable": True, "decoder_convs": 1},
        "smp:DeepLabV3Plus:resnet50",
        "both: separable ASPP, one separable decoder conv (smp's design)",
    ),
    Arch(
        "deeplabv3plus_mnv2",
        "DeepLabv3+ MobileNetV2 OS16",
        {"name": "deeplabv3plus_mobilenetv2"},
        "smp:DeepLabV3Plus:mobilenet_v2",
        "semseg's decoder as shipped; smp's separable design",
    ),
    Arch("unet", "U-Net ResNet-34", {"name": "unet_resnet34"}, "smp:Unet:resnet34"),
    Arch("fpn", "FPN ResNet-50", {"name": "fpn_resnet50"}, "smp:FPN:resnet50"),
    Arch(
        "pspnet",
        "PSPNet ResNet-50 OS8",
        {"name": "pspnet_resnet50", "deep_stem": False, "bottleneck_kernel": 1},
        "smp:PSPNet:resnet50:os8",
        "both: dilated OS8, 7x7 stem, 1x1 bottleneck",
    ),
]


def build_semseg(spec: dict[str, Any]) -> nn.Module:
    from semseg import create_model

    return create_model(num_classes=NUM_CLASSES, **spec)


def build_peer(peer: str) -> nn.Module:
    kind, *rest = peer.split(":")
    if kind == "semseg":  # a stand-in peer for the suite's own tests (tiny, no peer package)
        return build_semseg({"name": rest[0], "channels_last": False})
    if kind == "tv":
        import torchvision

        fn = getattr(torchvision.models.segmentation, rest[0])
        return fn(weights=None, weights_backbone=None, num_classes=NUM_CLASSES, aux_loss=False)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import segmentation_models_pytorch as smp

    cls, encoder = rest[0], rest[1]
    if len(rest) > 2 and rest[2] == "os8":
        model = getattr(smp, cls)(encoder, encoder_weights=None, classes=NUM_CLASSES, encoder_depth=5, upsampling=8)
        model.encoder.make_dilated(output_stride=8)
        return model
    return getattr(smp, cls)(encoder, encoder_weights=None, classes=NUM_CLASSES)


def logits_of(out: Any) -> torch.Tensor:
    if isinstance(out, dict):
        return out["out"]
    if isinstance(out, tuple):
        return out[0]
    return getattr(out, "logits", out)


@dataclass
class Variant:
    """A model prepared for one row: how it is built, laid out and run."""

    name: str
    model: nn.Module
    channels_last: bool
    precision: str
    inference: Callable[[], Any] = field(default=lambda: torch.no_grad())


SHIPPED_ROW = "semseg as `predict` runs it (fast path, `auto` precision)"
FP32_ROW = "semseg fast path, float32 (`semseg eval`; `--precision fp32`)"
SAME_ROW = "peer, semseg's layout + precision"


def prepare_variants(arch: Arch, device: torch.device, precision: str, size: int) -> dict[str, Variant]:
    """semseg as `semseg predict` runs it by default (fast path: folded BN, its layout,
    ``precision`` = ``auto``: bf16 autocast where native, inference mode); the peer as it ships
    (fp32, NCHW, ``no_grad``); the peer given semseg's layout and precision by hand (inference
    mode); where ``auto`` autocasts, the float32 fast path that `semseg eval` runs; on CPU with
    onnxruntime, semseg's ONNX export run by ONNX Runtime at ``size`` x ``size``."""
    from semseg.inference.fastpath import fast_inference_model
    from semseg.precision import autocast_dtype

    ours = build_semseg(arch.semseg).to(device).eval()
    ours_nhwc = next(m for m in ours.modules() if isinstance(m, nn.Conv2d)).weight.is_contiguous(
        memory_format=torch.channels_last
    )
    shipped = fast_inference_model(ours)
    peer = build_peer(arch.peer).to(device).eval()
    peer_same = build_peer(arch.peer).to(device).eval()
    peer_same.load_state_dict(peer.state_dict())
    if ours_nhwc:
        peer_same = peer_same.to(memory_format=torch.channels_last)
    variants = {
        SHIPPED_ROW: Variant("semseg", shipped, ours_nhwc, precision, torch.inference_mode),
        "peer as shipped (fp32, NCHW)": Variant("peer", peer, False, "fp32"),
        SAME_ROW: Variant("peer_same", peer_same, ours_nhwc, precision, torch.inference_mode),
    }
    if autocast_dtype(precision, device) is not None:  # bf16 on a CPU with native bf16, on CUDA
        variants[FP32_ROW] = Variant("semseg_fp32", shipped, ours_nhwc, "fp32", torch.inference_mode)
    onnx = onnx_variant(ours, device, size)
    if onnx is not None:
        variants[ONNX_ROW] = onnx
    return variants


ONNX_ROW = "semseg exported, ONNX Runtime (fp32)"


def onnx_variant(model: nn.Module, device: torch.device, size: int) -> Variant | None:
    """The network exported by `semseg export` and run by ONNX Runtime, as `semseg predict
    --backend onnxruntime` runs it (CPU only; None without onnxruntime)."""
    if device.type != "cpu":
        return None
    try:
        from semseg.export import OnnxRuntimeModel, export_model, require_onnxruntime

        require_onnxruntime()
    except Exception:  # the onnx extra is not installed: the row is left out
        return None
    from semseg.errors import ExportError

    with tempfile.TemporaryDirectory(prefix="semseg-bench-") as folder:
        path = Path(folder) / "model.onnx"
        try:
            export_model(model, path, "onnx", size=(size, size), check=False)
        except ExportError as exc:  # PSPNet's adaptive pooling bins at a size they do not divide
            print(f"[models] no ONNX Runtime row: {exc}", file=sys.stderr, flush=True)
            return None
        runtime = OnnxRuntimeModel(path.read_bytes())
    return Variant("onnx", runtime, False, "fp32", torch.inference_mode)


def infer_fn(v: Variant, x: torch.Tensor, device: torch.device) -> Callable[[], None]:
    from semseg.precision import autocast

    x = x.contiguous(memory_format=torch.channels_last) if v.channels_last else x

    def run() -> None:
        with v.inference(), autocast(v.precision, device):
            logits_of(v.model(x))
        _sync(device)

    return run


def train_fn(model: nn.Module, x: torch.Tensor, precision: str, device: torch.device) -> Callable[[], None]:
    from semseg.precision import autocast

    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)
    target = torch.randint(0, NUM_CLASSES, (x.shape[0], *x.shape[-2:]), device=device)

    def step() -> None:
        with autocast(precision, device):
            out = logits_of(model(x))
        loss = F.cross_entropy(out.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)

    return step


_MEMORY_CHILD = """
import json, sys, torch
sys.path.insert(0, sys.argv[1])
import run_all
from semseg.bench import peak_rss_mb
a = json.loads(sys.argv[2])
arch = next(x for x in run_all.ARCHS if x.key == a["arch"])
device = torch.device(a["device"])
variant = run_all.prepare_one(arch, a["variant"], device, a["precision"])
if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats(device)
base = peak_rss_mb()
x = torch.randn(1, 3, a["size"], a["size"], device=device)
run_all.infer_fn(variant, x, device)()
peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else peak_rss_mb()
print(json.dumps({"peak": peak, "base": base}))
"""


def prepare_one(arch: Arch, key: str, device: torch.device, precision: str) -> Variant:
    """Only one variant (the memory subprocess must not hold the others)."""
    from semseg.inference.fastpath import fast_inference_model

    if key == "semseg":
        ours = build_semseg(arch.semseg).to(device).eval()
        nhwc = next(m for m in ours.modules() if isinstance(m, nn.Conv2d)).weight.is_contiguous(
            memory_format=torch.channels_last
        )
        return Variant("semseg", fast_inference_model(ours), nhwc, precision, torch.inference_mode)
    return Variant("peer", build_peer(arch.peer).to(device).eval(), False, "fp32")


def peak_memory(arch: Arch, key: str, device: torch.device, size: int, precision: str) -> str:
    """Peak memory of one batch-1 inference in a fresh process: resident set on CPU (includes
    the Python and torch runtime), ``max_memory_allocated`` on CUDA."""
    arg = json.dumps({"arch": arch.key, "variant": key, "device": str(device), "size": size, "precision": precision})
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(HERE), arg], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return "failed"
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return f"{data['peak']:.0f}"


def section_models(args: argparse.Namespace, device: torch.device) -> list[str]:
    from semseg.precision import autocast_dtype

    size, repeats = args.size, args.repeats
    precision = "auto"
    dtype = autocast_dtype(precision, device)
    lines = [
        f"## Models on {device.type.upper()}: semseg vs torchvision / segmentation_models_pytorch",
        "",
        f"Input {size}x{size}, {NUM_CLASSES} classes, random weights; median of {repeats} interleaved repeats after "
        f"one warm-up. semseg as shipped = what `semseg predict` and `semseg.predict` run by default: the inference "
        "fast path (batch norm folded, the model's default layout, `inference_mode`) in `auto` precision "
        f"(= {dtype or 'float32'} here); the peer given semseg's layout and precision by hand runs the same way. "
        "Other rows, each against the peer as shipped: the float32 fast path (what `semseg eval` runs, for scores "
        "that compare across machines; shown where `auto` autocasts) and semseg's ONNX export in ONNX Runtime "
        "(`--backend onnxruntime`, float32). Peers as they ship: fp32, NCHW, `no_grad`. Train step (batch 2: "
        f"forward, cross-entropy, backward, SGD) for both in semseg's layout and the trainer's default precision "
        f"(`{precision}` = {dtype or 'float32'} here). Peak memory: one batch-1 inference as the row runs it, in a "
        "fresh process (resident set on CPU, including the runtime).",
        "",
        "| architecture | row | latency b1 (ms) | throughput b8 (img/s) | train b2 (img/s) | peak mem b1 (MiB) |"
        " vs peer as shipped (b1 / b8) | vs peer same layout + precision (b1 / b8 / train) |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    archs = [a for key in args.archs for a in ARCHS if a.key == key] if args.archs else ARCHS
    for arch in archs:
        print(f"[models] {arch.title} on {device}", file=sys.stderr, flush=True)
        try:
            variants = prepare_variants(arch, device, precision, size)
        except ImportError as exc:
            lines.append(f"| {arch.title} | skipped: {exc} | | | | | | |")
            continue
        x1 = torch.randn(1, 3, size, size, device=device)
        x8 = torch.randn(args.batch, 3, size, size, device=device)
        b1 = interleaved({k: infer_fn(v, x1, device) for k, v in variants.items()}, repeats)
        b8 = interleaved({k: infer_fn(v, x8, device) for k, v in variants.items()}, max(1, repeats // 2))
        train: dict[str, list[float]] = {}
        if not args.no_train:
            ours_train = build_semseg(arch.semseg).to(device).train()
            nhwc = variants[SHIPPED_ROW].channels_last
            peer_train = build_peer(arch.peer).to(device).train()
            if nhwc:
                peer_train = peer_train.to(memory_format=torch.channels_last)
            x2 = torch.randn(2, 3, size, size, device=device)
            x2 = x2.contiguous(memory_format=torch.channels_last) if nhwc else x2
            train = interleaved(
                {
                    SHIPPED_ROW: train_fn(ours_train, x2, precision, device),
                    SAME_ROW: train_fn(peer_train, x2, precision, device),
                },
                max(1, repeats // 2),
            )
            del ours_train, peer_train
        keys = {SHIPPED_ROW: "semseg", "peer as shipped (fp32, NCHW)": "peer"}
        med1 = {k: median(t) for k, t in b1.items()}
        med8 = {k: args.batch / median(t) for k, t in b8.items()}
        medt = {k: 2 / median(t) for k, t in train.items()}
        ours = SHIPPED_ROW
        for k in variants:
            mem = peak_memory(arch, keys[k], device, size, precision) if (k in keys and not args.no_memory) else ""
            tr = f"{medt[k]:.3f}" if k in medt else ""
            vs_ship = vs_same = ""
            if k == ours:
                peer, same = "peer as shipped (fp32, NCHW)", SAME_ROW
                vs_ship = (
                    f"{verdict(med1[peer] / med1[ours], GOALS['infer_shipped'])} / "
                    f"{verdict(med8[ours] / med8[peer], GOALS['infer_shipped'])}"
                )
                vs_same = (
                    f"{verdict(med1[same] / med1[ours], GOALS['infer_same'])} / "
                    f"{verdict(med8[ours] / med8[same], GOALS['infer_same'])}"
                )
                if same in medt:
                    vs_same += f" / {verdict(medt[ours] / medt[same], GOALS['train'])}"
            elif k in (ONNX_ROW, FP32_ROW):  # other ways to run semseg: no goal, the ratio for choosing one
                peer = "peer as shipped (fp32, NCHW)"
                vs_ship = f"{med1[peer] / med1[k]:.2f}x / {med8[k] / med8[peer]:.2f}x"
            peer_name = arch.peer.split(":")[0].replace("tv", "torchvision")
            row = k.replace("peer", peer_name)
            lines.append(
                f"| {arch.title} | {row} | {1000 * med1[k]:.1f} | {med8[k]:.3f} | {tr} | {mem} | {vs_ship} | {vs_same} |"
            )
        if arch.note:
            lines.append(f"| | *{arch.note}* | | | | | | |")
        del variants
    return lines


# ----------------------------------------------------------------------------- confusion matrix


def section_confusion(args: argparse.Namespace) -> list[str]:
    from semseg.metrics import ConfusionMatrix

    lines = ["## Confusion matrix vs torchmetrics", ""]
    try:
        from torchmetrics.classification import MulticlassConfusionMatrix
    except ImportError:
        return [*lines, 'skipped: torchmetrics is not installed (`pip install -e ".[bench]"`).']
    n, h, w = (2, 64, 64) if args.quick else (8, 512, 512)
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, NUM_CLASSES, (n, h, w), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.1] = 255
    pred = torch.where(torch.rand(target.shape, generator=g) < 0.7, target.clamp(max=NUM_CLASSES - 1), target % 7)
    ours = ConfusionMatrix(NUM_CLASSES)
    peer = MulticlassConfusionMatrix(NUM_CLASSES, ignore_index=255)
    peer_fast = MulticlassConfusionMatrix(NUM_CLASSES, ignore_index=255, validate_args=False)
    ours.update(pred, target)
    peer.update(pred, target)
    same = torch.equal(ours.mat.long(), peer.confmat.long())
    times = interleaved(
        {
            "semseg ConfusionMatrix.update": lambda: ours.update(pred, target),
            "torchmetrics MulticlassConfusionMatrix (default)": lambda: peer.update(pred, target),
            "torchmetrics (validate_args=False)": lambda: peer_fast.update(pred, target),
        },
        args.repeats * 3,
    )
    base = median(times["semseg ConfusionMatrix.update"])
    lines += [
        f"{n}x{h}x{w} int64 labels, {NUM_CLASSES} classes, 10% ignored (255); counts identical: {same}. "
        f"Median of {args.repeats * 3} interleaved calls.",
        "",
        "| implementation | ms per update | Mpixel/s | semseg speed-up |",
        "|---|---:|---:|---:|",
    ]
    for name, ts in times.items():
        m = median(ts)
        lines.append(f"| {name} | {1000 * m:.2f} | {pred.numel() / m / 1e6:.1f} | {m / base:.2f}x |")
    return lines


# ----------------------------------------------------------------------------- sliding window


def section_slide(args: argparse.Namespace, device: torch.device) -> list[str]:
    from semseg import create_model
    from semseg.inference import infer_slide
    from semseg.inference.fastpath import fast_inference_model
    from semseg.precision import autocast

    name = SLIDE_MODEL
    h, w, crop = (96, 128, 64) if args.quick else (720, 960, 512)
    model = fast_inference_model(create_model(name, num_classes=NUM_CLASSES).to(device).eval())
    x = torch.randn(1, 3, h, w, device=device).contiguous(memory_format=torch.channels_last)
    stride = 2 * crop // 3
    n_windows = len(range(0, max(h - crop, 0) + stride, stride)) * len(range(0, max(w - crop, 0) + stride, stride))

    def run(k: int) -> Callable[[], None]:
        def fn() -> None:
            with torch.inference_mode(), autocast("auto", device):
                infer_slide(model, x, crop=crop, stride=stride, tile_batch=k)
            _sync(device)

        return fn

    rows = {
        "one tile at a time (tile_batch=1, default)": run(1),
        "4 tiles per pass": run(4),
        "all tiles in one pass": run(64),
    }
    times = interleaved(rows, args.repeats)
    base = median(times[next(iter(rows))])
    lines = [
        f"## Sliding window on {device.type.upper()}: batched tiles vs one at a time",
        "",
        f"{name} (fast path, autocast auto), image {h}x{w}, crop {crop}, stride {stride} (about {n_windows} windows); "
        f"median of {args.repeats} interleaved runs.",
        "",
        "| tiles per forward pass | median s | speed vs one at a time |",
        "|---|---:|---:|",
    ]
    for row, ts in times.items():
        lines.append(f"| {row} | {median(ts):.3f} | {base / median(ts):.2f}x |")
    return lines


# ----------------------------------------------------------------------------- runtimes


def section_runtimes(args: argparse.Namespace) -> list[str]:
    """The shipped CamVid network in each runtime semseg can serve it with (benchmarks/runtimes.py)."""
    import runtimes

    size = "64x64" if args.quick else "360x480"
    options = ["--size", size, "--repeats", str(args.repeats), "--threads", str(args.threads or 1)]
    return [
        "## Runtimes on CPU: the shipped CamVid network in PyTorch, torch.compile and ONNX Runtime",
        "",
        *runtimes.measure(runtimes.parse(options + (["--no-compile"] if args.quick else []))),
    ]


# ----------------------------------------------------------------------------- the report

NOTES = {
    "models": [
        "Notes: `semseg predict` (and `semseg.predict`, `semseg serve`) default to `auto` precision: bfloat16 "
        "autocast on a CPU with native bf16 (AVX512-BF16 / AMX) or a bf16-capable GPU, float32 elsewhere. On CamVid "
        "val the shipped model's bf16 and float32 mIoU differ by less than the 0.1 points allowed for a default "
        "(measured figures: README, 'CamVid: the shipped model'; an earlier, half-trained checkpoint moved by more: "
        "for your own model compare "
        "`semseg eval RUN --precision bf16` with `semseg eval RUN`). `semseg eval` keeps float32 so that scores "
        "compare across machines. On a CPU without native bf16 the shipped row is the float32 fast path, which "
        "gains only what is exact: folded batch norm and the layout, a few percent, since the convolutions dominate. "
        "Fused conv + ReLU kernels are what would close that float32 gap: ONNX Runtime fuses them (its row: "
        "semseg's export, fp32, as `semseg predict --backend onnxruntime` runs it, exported in memory when there "
        "is no file), `torch.compile` through Inductor too; see the runtimes table for whether either helps on "
        "this machine. Neither is the default: ONNX Runtime needs the optional `onnx` extra and seconds of export "
        "per model, `torch.compile` a C++ compiler and minutes on a cold cache. The train step (no fast path: training "
        "needs its batch norm) is not ahead of the peers in the same layout and precision; where the time goes "
        "(layout conversions, aux heads, the head design) is still to be profiled.",
    ],
    "crf": suite_crf.NOTES,
    "slide": [
        "Notes: on a CPU the convolutions already use every thread on one tile, so stacking tiles only grows the "
        "working set; `tile_batch` stays 1 by default and is for GPUs, where one tile does not fill the device "
        "(not measured: no GPU was lent).",
    ],
    "data": suite_data.NOTES,
}


def versions() -> str:
    out = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
    for mod in ("torchvision", "segmentation_models_pytorch", "torchmetrics", "numpy"):
        try:
            out.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            out.append(f"{mod} (not installed)")
    try:
        from importlib.metadata import version

        out.append(f"pydensecrf2 {version('pydensecrf2')}")
    except Exception:  # not installed
        out.append("pydensecrf2 (not installed)")
    return ", ".join(out)


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def header(args: argparse.Namespace) -> list[str]:
    from semseg.precision import autocast_dtype

    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    bf16 = autocast_dtype("auto", "cpu") is not None
    return [
        "# Benchmarks: semseg next to its peers",
        "",
        f"Produced by `python benchmarks/run_all.py {' '.join(args.argv)}` at {when}.",
        "",
        f"- Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, native bf16 on CPU: {bf16}; GPU: {gpu}.",
        f"- Versions: {versions()}.",
        f"- Settings: {torch.get_num_threads()} torch threads, load average at the start "
        f"{os.getloadavg()[0]:.2f}; repeats {args.repeats}; sections {', '.join(args.sections)}"
        + (" (QUICK smoke run: tiny sizes, figures meaningless)" if args.quick else "")
        + ".",
        *([f"- Conditions: {args.conditions}"] if args.conditions else []),
        f"- Goals (ratio to the peer, same run): inference {GOALS['infer_shipped']}x as shipped and "
        f"{GOALS['infer_same']}x given the same layout and precision, train step {GOALS['train']}x, data pipeline "
        f"{GOALS['data']}x per worker, dense CRF {GOALS['crf_idle']}x idle and {GOALS['crf_loaded']}x with one busy "
        "process. A missed goal reads MISSED.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repeat: a smoke test")
    parser.add_argument("--conditions", default="", help="what else ran on the machine, written into the header")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated of {', '.join(SECTIONS)}")
    parser.add_argument("--archs", default="", help="comma-separated of " + ", ".join(a.key for a in ARCHS))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8, help="throughput batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads for every row (0: torch's default). On a machine other jobs keep busy, 1 avoids "
        "OpenMP threads waiting for each other (measured 40x slower small ops with 2 threads under load)",
    )
    parser.add_argument("--no-train", action="store_true", help="skip the train-step columns")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="markdown file, or - to print"
    )
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; allowed: {', '.join(SECTIONS)}")
    args.archs = [a for a in args.archs.split(",") if a]
    if args.quick:
        args.size, args.batch, args.repeats = 64, 2, 1
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the peak-memory subprocesses
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    lines = header(args)
    for section in args.sections:
        started = time.perf_counter()
        if section == "models":
            for device in devices:
                lines += section_models(args, device)
                lines.append("")
        elif section == "slide":
            for device in devices:
                lines += section_slide(args, device)
                lines.append("")
        else:
            sections = {
                "runtimes": section_runtimes,
                "confusion": section_confusion,
                "crf": section_crf,
                "data": section_data,
            }
            lines += sections[section](args)
        lines += ["", *NOTES.get(section, []), "", f"*({section}: {time.perf_counter() - started:.0f} s)*", ""]
        print("\n".join(lines[-40:]), flush=True)
        if section != args.sections[-1]:  # what is measured so far survives an interrupted run
            _write(args.out, [*lines, "*(run in progress: later sections not measured yet)*"])
    _write(args.out, lines)
    return 0


def _write(out: Path, lines: list[str]) -> None:
    text = "\n".join(lines).rstrip() + "\n"
    if str(out) == "-":
        print(text)
        return
    from semseg.engine.files import write_atomic

    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, text)


if __name__ == "__main__":
    raise SystemExit(main())

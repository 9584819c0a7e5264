"""Which runtime serves a trained network fastest on this CPU: the PyTorch fast path in float32 and
with bf16 autocast, ``torch.compile`` of the fast path, and the ONNX export run by ONNX Runtime.

    python benchmarks/runtimes.py                       # the shipped CamVid model, 1x3x360x480
    python benchmarks/runtimes.py --model runs/my_run --size 512x512 --batch 4 --threads 2

Rows run interleaved (A, B, C, D, A, B, ...), so load from other processes hits all of them
alike; the table gives medians, the ratio to the float32 fast path, each row's largest logit
difference from it, and the one-off cost (compile or export). Needs the ``onnx`` extra for the
ONNX Runtime row (``pip install -e ".[onnx]"``); ``torch.compile`` needs a C++ compiler.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

import semseg
from semseg.inference.fastpath import fast_inference_model


def logits_of(out: object) -> torch.Tensor:
    return getattr(out, "logits", out)  # type: ignore[return-value]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="camvid", help="a shipped model, run or checkpoint folder")
    parser.add_argument("--size", default="360x480", help="HxW")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (minutes on a cold cache)")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> list[str]:
    """The markdown table (with its heading line) for ``args`` (see :func:`parse`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _measure(args)
    finally:
        torch.set_num_threads(before)


def _measure(args: argparse.Namespace) -> list[str]:
    h, w = (int(v) for v in args.size.lower().split("x"))
    model = semseg.load_model(args.model).eval()
    fast = fast_inference_model(model)
    x = torch.randn(args.batch, len(model.mean), h, w, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = logits_of(fast(x))

    rows: dict[str, Callable[[], torch.Tensor]] = {}
    setup: dict[str, float] = {}
    notes: list[str] = []

    def eager() -> torch.Tensor:
        with torch.inference_mode():
            return logits_of(fast(x))

    def eager_bf16() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return logits_of(fast(x)).float()

    rows["PyTorch fast path, float32"] = eager
    rows["PyTorch fast path, bf16 autocast"] = eager_bf16
    if not args.no_compile:
        compiled = torch.compile(fast)

        def compiled_run() -> torch.Tensor:
            with torch.inference_mode():
                return logits_of(compiled(x))

        start = time.perf_counter()
        compiled_run()
        setup["torch.compile(fast path), float32"] = time.perf_counter() - start
        rows["torch.compile(fast path), float32"] = compiled_run
    try:
        from semseg.export import OnnxRuntimeModel, export_model, require_onnxruntime

        require_onnxruntime()
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            export_model(model, Path(folder) / "m.onnx", "onnx", size=(h, w), check=False)
            runtime = OnnxRuntimeModel((Path(folder) / "m.onnx").read_bytes(), threads=args.threads)
            setup["ONNX Runtime, float32"] = time.perf_counter() - start

        def onnx_run() -> torch.Tensor:
            return runtime(x)

        rows["ONNX Runtime, float32"] = onnx_run
    except Exception as exc:  # the onnx extra is missing, or the network does not export
        notes.append(f"no ONNX Runtime row: {exc}")

    diffs = {name: float((run() - reference).abs().max()) for name, run in rows.items()}  # also a warm-up
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, run in rows.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["PyTorch fast path, float32"])
    lines = [
        f"`{args.model}` ({getattr(model, 'model_name', type(model).__name__)}), input {args.batch}x3x{h}x{w}, "
        f"{args.threads} thread(s), median of {args.repeats} interleaved repeats; {platform.machine()}, "
        f"torch {torch.__version__}. {' '.join(notes)}",
        "",
        "| runtime | ms per batch | vs fast path fp32 | max abs logit diff | one-off cost (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, ts in times.items():
        med = statistics.median(ts)
        cost = f"{setup[name]:.1f}" if name in setup else ""
        lines.append(f"| {name} | {1000 * med:.0f} | {base / med:.2f}x | {diffs[name]:.1e} | {cost} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    print("\n".join(measure(parse(argv))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

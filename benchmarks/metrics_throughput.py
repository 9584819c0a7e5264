"""Confusion-matrix update throughput on CPU: semseg's ConfusionMatrix side by side with
torchmetrics' MulticlassJaccardIndex, in the same process on the same tensors.

Inputs are what evaluation feeds the metric: ``int64`` predictions (an argmax) and ``int64``
targets with about 10% ignored pixels (255). Each row times ``update`` alone (the scores are
computed once at the end and are negligible), median of ``--iters`` calls after ``--warmup``,
and reports megapixels per second. Every implementation's counts are checked to be identical
before anything is timed.

Rows:
  * semseg ``ConfusionMatrix.update``: one ``aminmax`` per input, one fused ``target * C + pred``,
    one ``bincount`` with ignored pixels in a row that is dropped.
  * the previous semseg update (boolean-mask indexing of both inputs, then ``bincount``), kept
    here as a reference for what the change bought.
  * torchmetrics ``MulticlassJaccardIndex(average=None, ignore_index=255)`` with its default
    ``validate_args=True`` (what users get) and with ``validate_args=False``.

Usage (from the repository root; needs ``pip install torchmetrics``)::

    python benchmarks/metrics_throughput.py                 # 4 x 512 x 512, 19 and 150 classes
    python benchmarks/metrics_throughput.py --quick --out /tmp/m.md
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from semseg.metrics import ConfusionMatrix

ROOT = Path(__file__).resolve().parents[1]


def previous_update(mat: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, ignore: int = 255) -> None:
    """The update semseg used before (boolean masks, min/max checks, bincount)."""
    n = mat.shape[0]
    target, pred = target.reshape(-1), pred.reshape(-1)
    keep = target != ignore
    target, pred = target[keep].long(), pred[keep].long()
    if int(target.min()) < 0 or int(target.max()) >= n or int(pred.min()) < 0 or int(pred.max()) >= n:
        raise ValueError("label out of range")
    mat += torch.bincount(target * n + pred, minlength=n * n).reshape(n, n)


def median_seconds(fns: list[Callable[[], None]], warmup: int, iters: int) -> list[float]:
    """Median time per function. The functions take turns within each round, so a change in
    machine load (other jobs on a shared CPU) hits every row alike instead of one row."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(iters):
        for fn, t in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            t.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def make_inputs(batch: int, height: int, width: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, (batch, height, width), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.1] = 255
    right = torch.rand(target.shape, generator=g) < 0.7
    pred = torch.where(right & (target != 255), target, torch.randint(0, classes, target.shape, generator=g))
    return pred, target


def bench(classes: int, args: argparse.Namespace) -> list[tuple[str, float]]:
    from torchmetrics.classification import MulticlassJaccardIndex

    pred, target = make_inputs(args.batch, args.size[0], args.size[1], classes)
    ours = ConfusionMatrix(classes)
    prev = torch.zeros(classes, classes, dtype=torch.int64)
    tm_default = MulticlassJaccardIndex(classes, average=None, ignore_index=255)
    tm_fast = MulticlassJaccardIndex(classes, average=None, ignore_index=255, validate_args=False)
    ours.update(pred, target)
    previous_update(prev, pred, target)
    tm_default.update(pred, target)
    tm_fast.update(pred, target)
    for name, mat in (("previous", prev), ("torchmetrics", tm_default.confmat), ("tm no-validate", tm_fast.confmat)):
        if not torch.equal(ours.mat, mat.long()):
            raise SystemExit(f"counts differ between semseg and {name}")
    rows = [
        ("semseg ConfusionMatrix.update", lambda: ours.update(pred, target)),
        ("semseg previous update (boolean mask)", lambda: previous_update(prev, pred, target)),
        ("torchmetrics MulticlassJaccardIndex (default)", lambda: tm_default.update(pred, target)),
        ("torchmetrics MulticlassJaccardIndex (validate_args=False)", lambda: tm_fast.update(pred, target)),
    ]
    seconds = median_seconds([fn for _, fn in rows], args.warmup, args.iters)
    return [(name, pred.numel() / s / 1e6) for (name, _), s in zip(rows, seconds, strict=True)]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def report(results: dict[int, list[tuple[str, float]]], args: argparse.Namespace) -> str:
    import torchmetrics

    h, w = args.size
    lines = [
        "# Confusion-matrix update throughput (CPU)",
        "",
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC by `python benchmarks/metrics_throughput.py"
        f"{' --quick' if args.quick else ''}`: {cpu_name()}, {args.threads} thread(s), torch {torch.__version__}, "
        f"torchmetrics {torchmetrics.__version__}. Inputs: {args.batch} x {h} x {w} int64 prediction and target, "
        f"~10% ignored (255); median of {args.iters} `update` calls after {args.warmup} warm-up, the rows taking turns. All rows produce "
        "identical counts (checked before timing).",
        "",
    ]
    for classes, rows in results.items():
        base_default, base_fast = rows[2][1], rows[3][1]
        lines += [
            f"## {classes} classes",
            "",
            "| implementation | Mpx/s | vs torchmetrics default | vs torchmetrics no-validate |",
        ]
        lines.append("|---|---:|---:|---:|")
        for name, mpx in rows:
            lines.append(f"| {name} | {mpx:,.0f} | {mpx / base_default:.1f}x | {mpx / base_fast:.1f}x |")
        lines.append("")
    lines += [
        "torchmetrics' default validation runs `torch.unique` over both inputs on every update; its",
        "update then copies the non-ignored pixels out with boolean indexing before its `bincount`.",
        "semseg checks ranges with one `aminmax` per input and sends ignored pixels to a spare row of",
        "the `bincount`, so it makes no copy of the inputs; out-of-range labels are still rejected.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--classes", type=int, nargs="+", default=(19, 150))
    parser.add_argument("--iters", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: stable on a busy machine)")
    parser.add_argument("--quick", action="store_true", help="64x64, 3 iterations: a smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench_metrics.md")
    args = parser.parse_args()
    if args.quick:
        args.size, args.batch, args.iters, args.warmup = (64, 64), 2, 3, 1
    torch.set_num_threads(args.threads)
    results = {c: bench(c, args) for c in args.classes}
    text = report(results, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

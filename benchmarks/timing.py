"""Shared code of the model benchmark scripts: the timing of :mod:`semseg.bench` (so that the
scripts and ``semseg bench`` measure the same way), their common options, the "measured on"
header and the table writer."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from semseg.bench import format_rows, measure_in_subprocess, peak_rss_mb, time_model
from semseg.constants import PRECISIONS

__all__ = [
    "add_timing_args",
    "format_rows",
    "measure_in_subprocess",
    "measured_header",
    "peak_rss_mb",
    "prepare_subprocesses",
    "time_model",
    "write_table",
]


def add_timing_args(parser: argparse.ArgumentParser, batch: int, out: Path) -> None:
    """The options every model benchmark takes."""
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="OMP threads per run (0: torch default)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    # fp32 by default: the published tables compare architectures, not autocast support.
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="autocast (semseg.precision)")
    parser.add_argument("--quick", action="store_true", help="64x64, 1 iteration: check that everything runs")
    parser.add_argument("--out", type=Path, default=out)


def prepare_subprocesses(args: argparse.Namespace, num_classes: int, here: Path) -> dict[str, Any]:
    """Let the timing subprocesses import the calling script and inherit ``--threads``; return
    the keyword arguments of :func:`time_model`."""
    if args.quick:
        args.size, args.warmup, args.iters = 64, 1, 1
    os.environ["PYTHONPATH"] = os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")])
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    timing = {"size": [args.size, args.size], "batch": args.batch, "device": args.device, "precision": args.precision}
    return timing | {"warmup": args.warmup, "iters": args.iters, "num_classes": num_classes}


def measured_header(args: argparse.Namespace, num_classes: int, script: str) -> list[str]:
    """Two lines: when and where it was measured, and the exact command."""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    threads = args.threads or torch.get_num_threads()
    return [
        f"Measured {when} on {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"device `{args.device}`, {threads} threads, {args.precision}, torch {torch.__version__}.",
        f"Input {args.size}x{args.size}, batch {args.batch}, {num_classes} classes, warmup {args.warmup}, "
        f"median of {args.iters}. Command: `python benchmarks/{script} {' '.join(sys.argv[1:])}`.",
    ]


def write_table(path: Path, table: str) -> None:
    """Replace the text between ``<!-- table -->`` and ``<!-- /table -->`` (so the discussion
    around it stays), or write the table alone if the file has no markers."""
    start, end = "<!-- table -->", "<!-- /table -->"
    old = path.read_text() if path.is_file() else ""
    if start in old and end in old:
        table = old.split(start)[0] + f"{start}\n{table}{end}" + old.split(end, 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table)

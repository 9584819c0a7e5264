"""Throughput and memory of a model: train-step and inference images/s and peak memory.

A train step is forward + pixel-wise cross-entropy + backward + SGD step; inference is a
``no_grad`` forward in eval mode. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA
and, on CPU, the process's peak resident set (``VmHWM``) measured in a fresh subprocess per
model so that one model's peak does not hide another's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from semseg.precision import autocast


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_model(
    model: nn.Module,
    size: tuple[int, int] = (512, 512),
    batch: int = 1,
    device: str = "cpu",
    warmup: int = 1,
    iters: int = 3,
    num_classes: int | None = None,
    precision: str = "auto",
) -> dict[str, float]:
    """Measure ``train_ips`` and ``infer_ips`` (images/s) and ``peak_mem_mb`` (CUDA only here;
    use :func:`measure_in_subprocess` for CPU peak memory).

    ``model(x)`` may return a tensor, a torchvision-style dict with ``"out"``, or an object with
    ``.logits``; ``num_classes`` is read from the output when not given.
    """
    dev = torch.device(device)
    model = model.to(dev)
    x = torch.randn(batch, 3, *size, device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def step() -> None:
        with autocast(precision, dev):
            out = _logits(model(x))
        target = torch.randint(0, out.shape[1], (batch, *out.shape[-2:]), device=dev)
        loss = F.cross_entropy(out.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer() -> None:
        with torch.no_grad(), autocast(precision, dev):
            _logits(model(x))

    model.train()
    train_s = _time(step, warmup, iters, dev)
    model.eval()
    infer_s = _time(infer, warmup, iters, dev)
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else float("nan")
    return {"train_ips": batch / train_s, "infer_ips": batch / infer_s, "peak_mem_mb": peak}


def _logits(out: Any) -> torch.Tensor:
    if isinstance(out, dict):
        return out["out"]
    return getattr(out, "logits", out)


def _time(fn: Callable[[], None], warmup: int, iters: int, device: torch.device) -> float:
    """Median seconds per call after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux ``VmHWM``), in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_in_subprocess(builder: str, kwargs: dict[str, Any]) -> dict[str, float]:
    """Run :func:`time_model` on ``builder()`` in a fresh Python process and add its peak RSS.

    ``builder`` is ``"module:function"`` returning the model (e.g. ``"semseg:create_model"``
    with ``kwargs["build"] = {"name": ..., "num_classes": ...}``).
    """
    code = (
        "import json,sys,importlib;from semseg.bench import time_model, peak_rss_mb;"
        "a=json.loads(sys.argv[1]);mod,fn=a['builder'].split(':');"
        "m=getattr(importlib.import_module(mod),fn)(**a['build']);"
        "base=peak_rss_mb();r=time_model(m,**a['time']);"
        "r['peak_mem_mb']=r['peak_mem_mb'] if r['peak_mem_mb']==r['peak_mem_mb'] else peak_rss_mb();"
        "r['model_mem_mb']=base;print(json.dumps(r))"
    )
    arg = json.dumps({"builder": builder, "build": kwargs["build"], "time": kwargs["time"]})
    out = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark of {kwargs['build']} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A markdown table of benchmark rows (``name``, ``train_ips``, ``infer_ips``, ``peak_mem_mb``)."""
    lines = ["| model | train img/s | infer img/s | peak mem (MiB) |", "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['train_ips']:.3f} | {r['infer_ips']:.3f} | {r['peak_mem_mb']:.0f} |")
    return "\n".join(lines)

"""Dense CRF speed: ``semseg.inference.dense_crf`` (PyTorch permutohedral lattice) side by side
with pydensecrf2 (Krahenbuhl's C++ code) in the same run, same image, same parameters.

    python benchmarks/crf_speed.py                      # 480x360, 11 labels, 10 iterations
    python benchmarks/crf_speed.py --size 240x180 --repeats 3 --out -   # quick check, print only

The image is a CamVid val image (``../shared/data/camvid``; a synthetic image where that is
absent), the probabilities a noisy one-hot of its label map (no trained model needed). Runs are
interleaved (pydensecrf, ours, pydensecrf, ...) so that load from other processes hits both
alike; the table gives the median and the fastest of ``--repeats`` runs, and the median CPU time
of this process per call (every row runs single-threaded but the 2-thread ones, whose lattice runs
in one thread too), which other processes on the machine move far less than the wall-clock time.
"setup" is a call with ``iterations=0`` (building the two lattices only).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from semseg.inference import dense_crf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import write_table

ROOT = Path(__file__).resolve().parents[1]
CAMVID = ROOT.parent / "shared" / "data" / "camvid"
PARAMS = {"bilateral_weight": 4, "bilateral_xy": 121, "bilateral_rgb": 5, "gaussian_weight": 3, "gaussian_xy": 3}


def load_inputs(width: int, height: int, classes: int) -> tuple[np.ndarray, np.ndarray, str]:
    from PIL import Image

    rng = np.random.default_rng(0)
    name = "0016E5_07959.png"
    if (CAMVID / "val" / name).is_file():
        img = Image.open(CAMVID / "val" / name).convert("RGB").resize((width, height), Image.BILINEAR)
        lab = Image.open(CAMVID / "valannot" / name).resize((width, height), Image.NEAREST)
        image, label, source = np.array(img), np.asarray(lab).astype(np.int64) % classes, f"CamVid val/{name}"
    else:
        yy, xx = np.mgrid[:height, :width]
        label = ((xx // 60) + (yy // 45)) % classes
        image = np.stack([label * 23 % 256, label * 71 % 256, label * 131 % 256], -1) + rng.normal(
            0, 10, (height, width, 3)
        )
        image, source = image.clip(0, 255).astype(np.uint8), "synthetic blocks"
    logits = 3.0 * np.eye(classes)[label].transpose(2, 0, 1) + rng.normal(0, 1.5, (classes, height, width))
    probs = np.exp(logits - logits.max(0))
    return image, (probs / probs.sum(0)).astype(np.float32), source


def pydensecrf_fn(image: np.ndarray, probs: np.ndarray, iterations: int) -> Callable[[], np.ndarray] | None:
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError:
        return None
    c, h, w = probs.shape
    unary = np.ascontiguousarray(-np.log(np.clip(probs, 1e-5, 1.0)).reshape(c, -1))

    def run() -> np.ndarray:
        crf = dcrf.DenseCRF2D(w, h, c)
        crf.setUnaryEnergy(unary)
        crf.addPairwiseGaussian(sxy=PARAMS["gaussian_xy"], compat=PARAMS["gaussian_weight"])
        crf.addPairwiseBilateral(
            sxy=PARAMS["bilateral_xy"], srgb=PARAMS["bilateral_rgb"], rgbim=image, compat=PARAMS["bilateral_weight"]
        )
        return np.array(crf.inference(iterations)).reshape(c, h, w)

    return run


def ours_fn(
    image: np.ndarray, probs: np.ndarray, iterations: int, device: str, threads: int
) -> Callable[[], np.ndarray]:
    img, p = torch.from_numpy(image).to(device), torch.from_numpy(probs).to(device)

    def run() -> np.ndarray:
        torch.set_num_threads(threads)
        out = dense_crf(img, p, iterations=iterations, **PARAMS)
        if device == "cuda":
            torch.cuda.synchronize()
        return out.cpu().numpy()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="480x360", help="W x H")
    ap.add_argument("--classes", type=int, default=11)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default=f"1,{os.cpu_count()}", help="torch CPU thread counts to time")
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench_crf.md"), help="markdown file, or - to print only")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    image, probs, source = load_inputs(width, height, args.classes)
    runs: dict[str, Callable[[], np.ndarray]] = {}
    ref = pydensecrf_fn(image, probs, args.iterations)
    if ref is not None:
        runs["pydensecrf2 (C++, 1 thread)"] = ref
    threads = sorted({int(t) for t in args.threads.split(",")})
    for t in threads:
        runs[f"semseg dense_crf, CPU, {t} thread{'s' * (t > 1)}"] = ours_fn(image, probs, args.iterations, "cpu", t)
        runs[f"semseg setup only (iterations=0), CPU, {t} thread{'s' * (t > 1)}"] = ours_fn(image, probs, 0, "cpu", t)
    if torch.cuda.is_available():
        runs[f"semseg dense_crf, CUDA ({torch.cuda.get_device_name()})"] = ours_fn(
            image, probs, args.iterations, "cuda", 1
        )
    load = os.getloadavg()
    outputs = {name: fn() for name, fn in runs.items()}  # warm-up, and the outputs compared below
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    torch.set_num_threads(max(threads))
    base = statistics.median(times[next(iter(runs))])
    base_cpu = statistics.median(cpu[next(iter(runs))])
    lines = [
        f"{width}x{height}, {args.classes} labels, {args.iterations} mean-field iterations, DeepLab parameters "
        f"(bilateral 4 / xy 121 / rgb 5, Gaussian 3 / xy 3); image: {source}; probabilities: noisy one-hot of its labels.",
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}. "
        f"Interleaved runs, {args.repeats} repeats after one warm-up; load average at the start {load[0]:.2f}"
        + (" (other processes were using the CPU: compare rows, not absolute times)." if load[0] > 1.0 else "."),
        "",
        "| implementation | median s | fastest s | speed vs first row (median; > 1 is faster) | median CPU s | "
        "speed vs first row, CPU |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, ts in times.items():
        med, med_cpu = statistics.median(ts), statistics.median(cpu[name])
        part = "setup" in name
        speed = "(part of the row above)" if part else f"{base / med:.2f}x"
        speed_cpu = "" if part else f"{base_cpu / med_cpu:.2f}x"
        lines.append(f"| {name} | {med:.3f} | {min(ts):.3f} | {speed} | {med_cpu:.3f} | {speed_cpu} |")
    if ref is not None:
        first = outputs[next(iter(runs))]
        lines.append("")
        for name, out in outputs.items():
            if "setup" in name or out is first:
                continue
            agree = float((out.argmax(0) == first.argmax(0)).mean())
            lines.append(
                f"- {name}: labels equal to pydensecrf2 on {100 * agree:.2f}% of pixels, max |p - p_ref| {np.abs(out - first).max():.2e}"
            )
    lines += [
        "",
        f"Command: `python benchmarks/crf_speed.py --size {args.size} --repeats {args.repeats} --threads {args.threads}`",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out != "-":
        write_table(Path(args.out), text)


if __name__ == "__main__":
    main()

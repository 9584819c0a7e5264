"""Make a shipped model (``src/semseg/pretrained/NAME``) from a trained run, and measure it.

    python tools/ship_model.py RUN_DIR --name camvid --recipe camvid/deeplabv3plus_mobilenetv2_os16_crop288 \\
        --weights ema --data-root ../shared/data/camvid [--multi-scale] [--crf]

RUN_DIR may also be a checkpoint folder of a run, e.g. ``RUN/checkpoints/bn_recalibrated`` from
``semseg recalibrate-bn RUN``.

Writes, each atomically, into a folder that replaces the old one only when complete:
``model.safetensors`` (float16; integer buffers stay as they are), ``meta.json`` (the run's,
with the config's data root cleared so recipes and ``--data-root`` decide) and ``scores.json``:
what ``semseg eval`` measured for the float16 weights on the val split, single scale (in float32,
and in bfloat16 autocast: what ``semseg predict`` runs on hardware with native bfloat16) and, with
``--multi-scale``, at scales 0.5-1.75 with flips (and with ``--crf`` also followed by the dense
CRF), with the exact commands, the date, the machine, and the run's iteration count and training
time. The config's ``train.init_from`` (a path on the machine that trained it) is cleared and
recorded in ``scores.json`` as the run it names. A developer tool: users never need it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file, save_file

from semseg.engine.checkpoint import find_checkpoint, read_meta
from semseg.engine.machine import describe_machine
from semseg.pretrained import SHIPPED_ROOT

MULTI_SCALE = ["--scales", "0.5,0.75,1,1.25,1.5,1.75", "--flip"]


def _training_time(run: Path, iteration: int) -> dict[str, float | None]:
    """Wall and CPU minutes at ``iteration`` from the run's ``log.jsonl`` (last entry at or before it)."""
    wall = cpu = None
    log = run / "log.jsonl"
    if log.is_file():
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("iteration", 0) <= iteration and "wall_s" in entry:
                wall, cpu = entry["wall_s"], entry.get("cpu_s")
    return {
        "wall_min": None if wall is None else round(wall / 60, 1),
        "cpu_min": None if cpu is None else round(cpu / 60, 1),
    }


def _evaluate(folder: Path, data_root: str, extra: list[str]) -> tuple[dict, str]:
    with tempfile.TemporaryDirectory() as out:
        command = ["semseg", "eval", str(folder), "--data-root", data_root, "--no-progress", "--out", out, *extra]
        subprocess.run(command, check=True)
        scores = json.loads((Path(out) / "metrics.json").read_text())
    name = folder.name
    shown = " ".join(["semseg", "eval", name, "--data-root", "DIR", *extra])
    return scores, shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--name", required=True)
    parser.add_argument("--recipe", required=True, help="the installed recipe the run followed")
    parser.add_argument("--weights", choices=("raw", "ema"), default="raw")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--multi-scale", action="store_true")
    parser.add_argument("--crf", action="store_true", help="with --multi-scale: also score MS + flip + CRF")
    args = parser.parse_args(argv)

    ckpt = find_checkpoint(args.run)
    run = ckpt.parent.parent  # RUN/checkpoints/NAME: the run's log gives the training time
    meta = read_meta(ckpt)
    init_from = meta["config"]["train"].get("init_from")
    meta["config"]["train"]["init_from"] = None
    (meta.get("bn_recalibration") or {}).pop("source", None)  # a path on the machine that made it
    source = ckpt / ("ema.safetensors" if args.weights == "ema" else "model.safetensors")
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(source)).items()}
    meta["config"]["data"]["root"] = None
    meta["config"]["output"] = {"dir": "runs", "name": args.recipe.replace("/", "_")}

    staged = SHIPPED_ROOT / f".{args.name}.tmp"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    save_file(tensors, str(staged / "model.safetensors"))
    (staged / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    # Score the files as shipped (float16 weights, this meta.json), under the shipped name.
    probe = Path(tempfile.mkdtemp()) / args.name
    shutil.copytree(staged, probe)
    single, single_cmd = _evaluate(probe, args.data_root, [])
    entries = {"single_scale": {**single, "command": single_cmd}}
    # What `semseg predict` runs where the hardware has native bfloat16 (PREDICT_PRECISION "auto").
    bf16, bf16_cmd = _evaluate(probe, args.data_root, ["--precision", "bf16"])
    entries["single_scale_bf16"] = {**bf16, "command": bf16_cmd}
    if args.multi_scale:
        multi, multi_cmd = _evaluate(probe, args.data_root, MULTI_SCALE)
        entries["multi_scale_flip"] = {**multi, "command": multi_cmd}
        if args.crf:
            crf, crf_cmd = _evaluate(probe, args.data_root, [*MULTI_SCALE, "--crf"])
            entries["multi_scale_flip_crf"] = {**crf, "command": crf_cmd}
    iteration = int(meta.get("iteration", 0))
    recalibration = meta.get("bn_recalibration")
    if recalibration:  # one set of weights: its meta says which of the run's it started from
        start = "raw" if recalibration["weights"] == "model" else recalibration["weights"]
        how = (
            f", batch-norm statistics re-estimated on {recalibration['images']} whole "
            f"{recalibration['split']} images (semseg recalibrate-bn)"
        )
    else:
        start, how = args.weights, ""
    weights = f"{start} weights of iteration {iteration}{how}"
    scores = {
        "dataset": meta["config"]["data"]["dataset"],
        "split": meta["config"]["data"]["val_split"],
        "recipe": args.recipe,
        "weights": f"{weights}, stored as float16",
        "training": {
            "iterations": iteration,
            **_training_time(run, iteration),
            "init_from": None if not init_from else "/".join(Path(init_from).parts[-4:]),
        },
        "measured": datetime.date.today().isoformat(),
        "machine": describe_machine("cpu"),
        **entries,
    }
    (staged / "scores.json").write_text(json.dumps(scores, indent=1) + "\n")
    final = SHIPPED_ROOT / args.name
    if final.exists():
        shutil.rmtree(final)
    staged.rename(final)
    print(f"{final}: mIoU {100 * single['miou']:.2f}% single scale", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""torchrun/DDP on CPU (gloo): two processes train, and their sharded evaluation (each image
counted once, counts summed with all_reduce) equals a single-process evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semseg.cli import main


@pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")
def test_torchrun_two_processes_match_single_process_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29531",
        "-m", "semseg", "train", "--no-progress",
        "--set", "train.iterations=2", "--set", "data.crop_size=[64,64]", "--set", "data.batch_size=2",
        "--set", "model.options.backbone_weights=null", "--set", "data.max_val_images=3",
        "--set", "train.precision=fp32", "--set", "train.device=cpu", "--set", "train.threads=1",
        "--set", f"output.dir={tmp_path}", "--set", "output.name=ddp",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    run = tmp_path / "ddp"
    ddp_miou = json.loads((run / "metrics.json").read_text())["miou"]
    eval_out = tmp_path / "single"
    assert main(["eval", str(run), "--no-progress", "--set", "data.max_val_images=3", "--out", str(eval_out)]) == 0
    single = json.loads((eval_out / "metrics.json").read_text())
    assert single["miou"] == pytest.approx(ddp_miou, abs=1e-12)

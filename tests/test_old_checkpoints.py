"""Checkpoints written before the networks' defaults followed the authors' released code
(2026-11-30) name fewer options in ``meta.json``: they still load, evaluate and resume as the
network they were trained as."""

from __future__ import annotations

import json
from pathlib import Path

import torch

import semseg
from semseg.cli import main

TINY = ["--set", "train.iterations=1", "--set", "train.eval_every=1", "--set", "data.max_val_images=1",
        "--set", "data.batch_size=2", "--set", "data.crop_size=[64, 64]", "--set", "train.precision=fp32",
        "--set", "model.options={output_stride: 16, backbone_weights: null, final_conv: true, depthwise_relu: false}"]  # fmt: skip


def _as_written_before(run: Path) -> None:
    """Make the run's meta.json look like one written before: no structure options named."""
    meta_path = run / "checkpoints" / "last" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["model_options"] = {"output_stride": 16}
    meta["config"]["model"]["options"] = {"output_stride": 16, "backbone_weights": None}
    meta_path.write_text(json.dumps(meta))


def test_an_old_deeplabv3plus_mobilenetv2_checkpoint_loads_and_resumes(tmp_path: Path) -> None:
    argv = ["train", "--no-progress", *TINY, "--set", f"output.dir={tmp_path}", "--set", "output.name=old"]
    assert main(argv) == 0
    run = tmp_path / "old"
    _as_written_before(run)
    model = semseg.load_model(run)
    assert model.backbone.out_channels[-1] == 1280  # the final 1x1 conv of the old default is there
    x = torch.rand(1, 3, 64, 64)
    assert model(x).shape == (1, 11, 64, 64)
    assert main(["train", "--resume", str(run), "--set", "train.iterations=2", "--no-progress"]) == 0
    assert json.loads((run / "checkpoints" / "last" / "meta.json").read_text())["iteration"] == 2

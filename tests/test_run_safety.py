"""Never lose a run: run-folder refusal and lock, exact resume after SIGKILL, Ctrl-C, a NaN loss,
a full disk, a crash between a checkpoint's renames, and predictions that never overwrite."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from semseg.cli import main
from semseg.config import Config, apply_overrides
from semseg.data import SAMPLE_ROOT
from semseg.engine import checkpoint as checkpoint_module
from semseg.engine.checkpoint import find_checkpoint, save_checkpoint
from semseg.engine.lock import LOCK_NAME
from semseg.engine.trainer import train
from semseg.errors import CheckpointError, TrainingDivergedError

TINY = [
    "--set", "data.crop_size=[48,48]", "--set", "data.batch_size=2", "--set", "data.max_val_images=1",
    "--set", "model.options.backbone_weights=null", "--set", "train.precision=fp32", "--set", "train.threads=1",
    "--set", "train.checkpoint_every=1", "--no-progress",
]  # fmt: skip


def _argv(out: Path, name: str, iterations: int) -> list[str]:
    return [
        "train",
        *TINY,
        "--set",
        f"train.iterations={iterations}",
        "--set",
        f"output.dir={out}",
        "--set",
        f"output.name={name}",
    ]


def _cfg(out: Path, name: str, iterations: int) -> Config:
    overrides = [a for a in _argv(out, name, iterations)[1:] if a not in ("--set", "--no-progress")]
    return apply_overrides(Config(), overrides)


def _spawn(argv: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "semseg", *argv], env=env, stderr=subprocess.PIPE, text=True)


def _wait_for_iteration(run: Path, at_least: int, proc: subprocess.Popen[str], timeout: float = 240) -> int:
    meta = run / "checkpoints" / "last" / "meta.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            it = json.loads(meta.read_text())["iteration"]
        except (OSError, ValueError, KeyError):
            it = 0
        if it >= at_least:
            return it
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


def _parameters(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last" / "model.safetensors"))


def test_a_new_run_never_writes_into_an_existing_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_argv(tmp_path, "r", 1)) == 0
    before = _parameters(tmp_path / "r")
    assert main(_argv(tmp_path, "r", 1)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a run" in err[0] and "--resume" in err[0] and "--overwrite" in err[0]
    after = _parameters(tmp_path / "r")
    assert all(torch.equal(before[k], after[k]) for k in before)  # untouched
    assert main([*_argv(tmp_path, "r", 1), "--set", "train.seed=1", "--overwrite"]) == 0
    replaced = _parameters(tmp_path / "r")
    assert any(not torch.equal(before[k], replaced[k]) for k in before)
    assert not (tmp_path / "r" / LOCK_NAME).exists()


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _spawn(_argv(tmp_path, "busy", 400))
    try:
        _wait_for_iteration(tmp_path / "busy", 1, first)
        assert main([*_argv(tmp_path, "busy", 400), "--overwrite"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"in use by pid {first.pid}" in err[0], err
        assert main(["train", "--resume", str(tmp_path / "busy"), "--no-progress"]) == 2
        assert f"in use by pid {first.pid}" in capsys.readouterr().err
    finally:
        first.kill()
        first.wait()
    # SIGKILL left the lock behind; its process is gone, so a resume takes it over.
    holder = json.loads((tmp_path / "busy" / LOCK_NAME).read_text())
    assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
    meta = find_checkpoint(tmp_path / "busy") / "meta.json"  # recovers a save the kill cut short
    data = json.loads(meta.read_text())
    data["config"]["train"]["iterations"] = data["iteration"] + 1
    meta.write_text(json.dumps(data))
    assert main(["train", "--resume", str(tmp_path / "busy"), "--no-progress"]) == 0


def test_resume_after_sigkill_is_bit_exact(tmp_path: Path) -> None:
    """16 batches an epoch (32 sample images, batch 2): killed mid-epoch, resumed, the weights
    equal an uninterrupted run's bit for bit."""
    total = 12
    assert main(_argv(tmp_path, "straight", total)) == 0
    proc = _spawn(_argv(tmp_path, "killed", total))
    try:
        reached = _wait_for_iteration(tmp_path / "killed", 3, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    at = json.loads((find_checkpoint(tmp_path / "killed") / "meta.json").read_text())["iteration"]
    assert reached <= at < total and at % 16 != 0  # killed mid-epoch, before the end
    assert main(["train", "--resume", str(tmp_path / "killed"), "--no-progress"]) == 0
    straight, resumed = _parameters(tmp_path / "straight"), _parameters(tmp_path / "killed")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path: Path) -> None:
    proc = _spawn(_argv(tmp_path, "stopped", 400))
    try:
        _wait_for_iteration(tmp_path / "stopped", 2, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    line = err.strip().splitlines()[-1]
    run = tmp_path / "stopped"
    assert f"resume with `semseg train --resume {run}`" in line and "Traceback" not in err
    done = int(line.split("after iteration ")[1].split(";")[0])
    assert json.loads((run / "checkpoints" / "last" / "meta.json").read_text())["iteration"] == done
    assert not (run / LOCK_NAME).exists()


def test_a_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semseg.losses.criterion import SegmentationCriterion

    calls = {"n": 0}
    original = SegmentationCriterion.forward

    def diverge_at_third(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        loss, terms = original(self, *args, **kwargs)
        if calls["n"] == 3:
            loss = loss * float("nan")
            terms = {**terms, "loss": float("nan")}
        return loss, terms

    monkeypatch.setattr(SegmentationCriterion, "forward", diverge_at_third)
    with pytest.raises(TrainingDivergedError, match=r"nan at iteration 3; .*last checkpoint kept: iteration 2"):
        train(_cfg(tmp_path, "nan", 5), progress=False)
    run = tmp_path / "nan"
    assert json.loads((run / "checkpoints" / "last" / "meta.json").read_text())["iteration"] == 2
    assert all(torch.isfinite(t).all() for t in _parameters(run).values())
    assert not (run / LOCK_NAME).exists()


def _model_and_meta():  # type: ignore[no-untyped-def]
    from semseg.engine.checkpoint import checkpoint_meta
    from semseg.models import create_model

    model = create_model("fcn_resnet18_d8", num_classes=2)
    model.set_metadata(["a", "b"], [(0, 0, 0), (9, 9, 9)])
    return model, checkpoint_meta(model, channels_last=True)


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, meta = _model_and_meta()
    folder = tmp_path / "checkpoints" / "last"
    save_checkpoint(folder, model, {**meta, "iteration": 1})

    def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module, "save_file", full)
    with pytest.raises(CheckpointError, match=r"No space left on device.*previous checkpoint is intact"):
        save_checkpoint(folder, model, {**meta, "iteration": 2})
    assert json.loads((folder / "meta.json").read_text())["iteration"] == 1
    assert not folder.with_name("last.tmp").exists()


@pytest.mark.parametrize("left", ["tmp", "old"])
def test_a_crash_between_the_renames_is_recovered(tmp_path: Path, left: str) -> None:
    model, meta = _model_and_meta()
    folder = tmp_path / "run" / "checkpoints" / "last"
    save_checkpoint(folder, model, {**meta, "iteration": 7})
    os.replace(folder, folder.with_name(f"last.{left}"))  # as if the process died mid-save
    assert find_checkpoint(tmp_path / "run") == folder
    assert json.loads((folder / "meta.json").read_text())["iteration"] == 7


def test_checkpoint_files_share_one_mode(tmp_path: Path) -> None:
    model, meta = _model_and_meta()
    folder = save_checkpoint(tmp_path / "last", model, meta, {"iteration": 0})
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert len(set(modes.values())) == 1 and modes["model.safetensors"] & 0o044, modes


def test_predict_never_overwrites_unless_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = sorted((SAMPLE_ROOT / "val").iterdir())[0]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "x.jpg").write_bytes(image.read_bytes())
    out = tmp_path / "out"
    base = ["predict", "--model", "fcn_resnet18_d8", "--out", str(out)]
    assert main([*base, str(tmp_path / "a" / "x.jpg"), str(tmp_path / "b" / "x.jpg")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would write the same outputs" in err[0]
    assert main([*base, str(tmp_path / "a" / "x.jpg")]) == 0
    assert "untrained model" in capsys.readouterr().err
    first = (out / "x_labels.png").read_bytes()
    assert main([*base, str(tmp_path / "b" / "x.jpg")]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert (out / "x_labels.png").read_bytes() == first
    assert main([*base, str(tmp_path / "b" / "x.jpg"), "--overwrite"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--model", "fcn_resnet18_d8", "--size", "0"], "--size expects H,W of positive integers"),
        (["bench", "--model", "fcn_resnet18_d8", "--device", "cuda:7"], "--device cuda:7 is not available"),
        (["train", "--set", "train.device=cuda:7"], "CUDA device"),
        (["train", "--set", "train.lr=.nan"], "train.lr=nan; it must be a number >= 0.0"),
        (["train", "--set", "train.log_every=0"], "train.log_every=0; it must be a number >= 1"),
        (["train", "--config", "/dev/null"], "config file /dev/null is empty"),
        (["train", "--set", "data.max_image_pixels=100"], "above the cap of 100 (data.max_image_pixels;"),
    ],
)
def test_more_user_errors_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from semseg.data import io

    monkeypatch.setattr(io, "MAX_IMAGE_PIXELS", io.MAX_IMAGE_PIXELS)  # the cap is process-wide: restore it
    if "cuda" in message.lower() and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 CUDA devices")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_an_unusable_output_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("not a folder")
    assert main(_argv(tmp_path / "file", "r", 1)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot make the run folder" in err[0], err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        assert main(_argv(locked, "r", 1)) == 2
        assert "cannot" in capsys.readouterr().err

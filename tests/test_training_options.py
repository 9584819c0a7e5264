"""Training options: fine-tuning with ``train.init_from``, safe ``--set`` on ``--resume``, gradient
accumulation, gradient clipping, the explicit linear LR scaling, and deterministic mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from semseg.cli import main
from semseg.config import Config, apply_overrides
from semseg.engine.run import build_run
from semseg.engine.step import train_step

TINY = [
    "--set", "data.crop_size=[48,48]", "--set", "data.batch_size=2", "--set", "data.max_val_images=1",
    "--set", "model.options.backbone_weights=null", "--set", "train.precision=fp32", "--set", "train.threads=1",
    "--no-progress",
]  # fmt: skip


def _folder_dataset(root: Path, images: int = 4, size: int = 32) -> None:
    """Two classes, every pixel labelled (no ignore), in train/ and val/ splits."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(images):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                root / split / "images" / f"{i}.png"
            )
            Image.fromarray(rng.integers(0, 2, (size, size), dtype=np.uint8)).save(root / split / "masks" / f"{i}.png")


def test_fine_tune_a_camvid_run_on_a_two_class_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "train",
                *TINY,
                "--set",
                "train.iterations=1",
                "--set",
                f"output.dir={tmp_path}",
                "--set",
                "output.name=camvid",
            ]
        )
        == 0
    )
    _folder_dataset(tmp_path / "ds")
    capsys.readouterr()
    argv = [
        "train", *TINY, "--set", "train.iterations=1", "--set", "data.dataset=folder",
        "--set", f"data.root={tmp_path / 'ds'}", "--set", "data.classes=[bg, fg]", "--set", "data.crop_size=[32,32]",
        "--set", f"train.init_from={tmp_path / 'camvid'}", "--set", f"output.dir={tmp_path}", "--set", "output.name=fine",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "init_from" in out and "skipped (other shape, re-initialised): head.classifier" in out, out
    source, tuned = (
        load_file(str(tmp_path / n / "checkpoints" / "last" / "model.safetensors")) for n in ("camvid", "fine")
    )
    # The classifier has 2 outputs now; the backbone's first conv started from the CamVid run's
    # (one step of training moves it only a little).
    first = next(k for k in source if k.startswith("backbone.") and k.endswith("weight") and source[k].dim() == 4)
    assert tuned[first].shape == source[first].shape
    assert (tuned[first] - source[first]).abs().max() < 0.01


def test_init_from_something_else_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    assert (
        main(["train", *TINY, "--set", f"train.init_from={tmp_path / 'notes.txt'}", "--set", f"output.dir={tmp_path}"])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint at" in err[0], err


def test_resume_takes_safe_overrides_and_refuses_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "r"
    assert (
        main(
            ["train", *TINY, "--set", "train.iterations=1", "--set", f"output.dir={tmp_path}", "--set", "output.name=r"]
        )
        == 0
    )
    assert main(["train", "--resume", str(run), "--set", "model.name=fcn_resnet18_d8", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--set model.name cannot change on --resume" in err[0] and "train.iterations" in err[0]
    assert main(["train", "--resume", str(run), "--set", "train.iterations=2", "--no-progress"]) == 0
    assert json.loads((run / "checkpoints" / "last" / "meta.json").read_text())["iteration"] == 2


def _one_step(
    tmp_path: Path, name: str, batch: int, accumulate: int, extra: tuple[str, ...] = ()
) -> dict[str, torch.Tensor]:
    cfg = apply_overrides(
        Config(),
        [
            "model.name=unet", "model.options={base_width: 4}", "data.dataset=folder", f"data.root={tmp_path / 'ds'}",
            "data.classes=[bg, fg]", "data.crop_size=[32,32]", "data.scale_range=[1.0,1.0]", "data.flip=false",
            f"data.batch_size={batch}", f"train.accumulate={accumulate}", "train.optimizer=sgd", "train.lr=0.1",
            "train.momentum=0.0", "train.weight_decay=0.0", "train.precision=fp32", "train.iterations=1",
            f"output.dir={tmp_path}", f"output.name={name}", *extra,
        ],
    )  # fmt: skip
    run = build_run(cfg)
    try:
        run.model.backbone.dropout.p = 0.0  # U-Net's dropout would draw other masks for 4 images than for 2 + 2
        train_step(run, 0)
    finally:
        run.close()
    return {k: v.detach().clone() for k, v in run.model.state_dict().items()}


def test_accumulating_two_batches_equals_one_batch_twice_as_large(tmp_path: Path) -> None:
    """U-Net without batch norm, every pixel labelled: the mean of two half-batch losses is the
    loss of the whole batch, so one SGD step gives the same weights."""
    _folder_dataset(tmp_path / "ds")
    whole = _one_step(tmp_path, "whole", batch=4, accumulate=1)
    halves = _one_step(tmp_path, "halves", batch=2, accumulate=2)
    start = _one_step(tmp_path, "start", batch=4, accumulate=1, extra=("train.lr=0.0",))
    moved = [k for k in whole if not torch.equal(whole[k], start[k])]
    assert moved  # the step changed the weights
    for key in whole:
        torch.testing.assert_close(halves[key], whole[key], rtol=1e-5, atol=1e-6)


def test_gradient_clipping_bounds_the_step(tmp_path: Path) -> None:
    _folder_dataset(tmp_path / "ds")
    start = _one_step(tmp_path, "s", batch=4, accumulate=1, extra=("train.lr=0.0",))
    free = _one_step(tmp_path, "f", batch=4, accumulate=1)
    clipped = _one_step(tmp_path, "c", batch=4, accumulate=1, extra=("train.clip_grad_norm=0.001",))

    def step_norm(after: dict[str, torch.Tensor]) -> float:
        return float(
            torch.sqrt(sum(((after[k] - start[k]).float() ** 2).sum() for k in start if start[k].is_floating_point()))
        )

    # SGD without momentum: the step is lr x gradient, so its norm is at most lr x the clip.
    assert step_norm(clipped) <= 0.1 * 0.001 * (1 + 1e-4) < step_norm(free)


def test_linear_lr_scaling_is_explicit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _folder_dataset(tmp_path / "ds")
    base = ["model.name=unet", "model.options={base_width: 4}", "data.dataset=folder", f"data.root={tmp_path / 'ds'}"]
    base += [
        "data.classes=[bg, fg]",
        "data.crop_size=[32,32]",
        "data.batch_size=2",
        "train.accumulate=2",
        "train.precision=fp32",
    ]
    for scale, expected in (("none", 1.0), ("linear", 2.0)):
        cfg = apply_overrides(
            Config(), [*base, f"train.scale_lr={scale}", f"output.dir={tmp_path}", f"output.name={scale}"]
        )
        run = build_run(cfg)
        run.close()
        assert run.lr_scale == expected
        assert "4 images per step (1 process(es) x 2 x batch 2); train.lr " in capsys.readouterr().out


def test_deterministic_mode_repeats_and_is_switched_off_afterwards(tmp_path: Path) -> None:
    from semseg.engine.trainer import train

    runs = []
    for name in ("a", "b"):
        cfg = apply_overrides(
            Config(),
            [a for a in TINY if a not in ("--set", "--no-progress")]
            + ["train.iterations=2", "train.deterministic=true", f"output.dir={tmp_path}", f"output.name={name}"],
        )
        train(cfg, progress=False)
        runs.append(load_file(str(tmp_path / name / "checkpoints" / "last" / "model.safetensors")))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not torch.are_deterministic_algorithms_enabled()


def test_resume_auto_starts_then_continues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", *TINY, "--resume", "auto", "--set", f"output.dir={tmp_path}", "--set", "output.name=elastic"]
    assert main([*argv, "--set", "train.iterations=1"]) == 0
    assert "no checkpoint in" in capsys.readouterr().out
    assert main([*argv, "--set", "train.iterations=2"]) == 0
    assert "continuing" in capsys.readouterr().out
    meta = json.loads((tmp_path / "elastic" / "checkpoints" / "last" / "meta.json").read_text())
    assert meta["iteration"] == 2


def test_weight_ema_by_hand() -> None:
    from semseg.engine.ema import WeightEMA

    model = torch.nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(1.0)
    ema = WeightEMA(model, decay=0.5, warmup=False)
    model.weight.data.fill_(3.0)
    ema.update(model)  # 0.5 * 1 + 0.5 * 3 = 2
    model.weight.data.fill_(6.0)
    ema.update(model)  # 0.5 * 2 + 0.5 * 6 = 4
    assert ema.state["weight"].item() == 4.0
    with ema.applied(model):
        assert model.weight.item() == 4.0
    assert model.weight.item() == 6.0


def test_weight_ema_warms_up() -> None:
    """The n-th update uses min(decay, (1 + n) / (10 + n)): 0.1, then 2/11, ...; a resumed average
    continues at its count."""
    from semseg.engine.ema import WeightEMA

    model = torch.nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(0.0)
    ema = WeightEMA(model, decay=0.999)
    model.weight.data.fill_(10.0)
    ema.update(model)  # 0.1 * 0 + 0.9 * 10
    assert ema.state["weight"].item() == pytest.approx(9.0)
    assert ema.current_decay() == pytest.approx(2 / 11) and ema.updates == 1
    assert WeightEMA(model, decay=0.999, updates=10_000).current_decay() == 0.999


def test_ema_is_evaluated_and_saved_beside_the_weights(tmp_path: Path) -> None:
    argv = ["train", *TINY, "--set", "train.iterations=2", "--set", "train.ema_decay=0.5"]
    assert main([*argv, "--set", f"output.dir={tmp_path}", "--set", "output.name=ema"]) == 0
    run = tmp_path / "ema"
    weights = load_file(str(run / "checkpoints" / "last" / "model.safetensors"))
    ema = load_file(str(run / "checkpoints" / "last" / "ema.safetensors"))
    assert weights.keys() == ema.keys() and any(not torch.equal(weights[k], ema[k]) for k in weights)
    record = json.loads((run / "eval.jsonl").read_text().splitlines()[-1])
    assert 0 <= record["ema_miou"] <= 1 and "ema" in json.loads((run / "metrics.json").read_text())


def test_tensorboard_event_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    argv = [
        "train",
        *TINY,
        "--set",
        "train.iterations=2",
        "--set",
        "train.log_every=1",
        "--set",
        "train.tensorboard=true",
    ]
    assert main([*argv, "--set", f"output.dir={tmp_path}", "--set", "output.name=tb"]) == 0
    events = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "val/miou"} <= set(tags["scalars"])
    assert any(t.startswith("val_iou/") for t in tags["scalars"]) and "val_images/0" in tags["images"]
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]

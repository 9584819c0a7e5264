"""Knowledge distillation (``train.distill``): the pixel-wise KL term, its config, the teacher it
loads, and a training run that distils a run's multi-scale + flip predictions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from semseg.cli import main
from semseg.config import Config, apply_overrides
from semseg.constants import IGNORE_INDEX
from semseg.engine.distill import build_teacher, distillation_loss
from semseg.errors import ConfigError

TINY = [
    "--set", "data.crop_size=[48,48]", "--set", "data.batch_size=2", "--set", "data.max_val_images=1",
    "--set", "model.options.backbone_weights=null", "--set", "train.precision=fp32", "--set", "train.threads=1",
    "--no-progress",
]  # fmt: skip


def _kl_by_hand(logits: torch.Tensor, probs: torch.Tensor, mask: torch.Tensor, t: float) -> torch.Tensor:
    """The same term, one labelled pixel at a time."""
    terms = []
    for n, y, x in (mask != IGNORE_INDEX).nonzero().tolist():
        q = torch.softmax(torch.log(probs[n, :, y, x]) / t, 0)
        p = torch.softmax(logits[n, :, y, x] / t, 0)
        terms.append((q * (q.log() - p.log())).sum())
    return torch.stack(terms).mean() * t * t


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_distillation_loss_is_the_mean_kl_over_labelled_pixels(temperature: float) -> None:
    logits = torch.randn(2, 5, 6, 7)
    probs = torch.softmax(torch.randn(2, 5, 6, 7), 1)
    mask = torch.randint(0, 5, (2, 6, 7))
    mask[0, :3] = IGNORE_INDEX
    got = distillation_loss(logits, probs, mask, temperature)
    torch.testing.assert_close(got, _kl_by_hand(logits, probs, mask, temperature), rtol=1e-4, atol=1e-6)
    # Ignored pixels take no part: changing the teacher there changes nothing.
    other = probs.clone()
    other[0, :, :3] = torch.softmax(torch.randn(5, 3, 7), 0)
    torch.testing.assert_close(distillation_loss(logits, other, mask, temperature), got)


def test_distillation_loss_is_zero_at_the_teacher_and_pulls_towards_it() -> None:
    probs = torch.softmax(torch.randn(1, 4, 5, 5), 1)
    mask = torch.zeros(1, 5, 5, dtype=torch.long)
    at_teacher = distillation_loss(probs.log(), probs, mask)
    assert float(at_teacher) == pytest.approx(0.0, abs=1e-6)
    logits = torch.zeros(1, 4, 5, 5, requires_grad=True)
    distillation_loss(logits, probs, mask).backward()
    # d KL / d logits = (p - q) / pixels: a step against the gradient moves p towards q.
    torch.testing.assert_close(logits.grad, (torch.full_like(probs, 0.25) - probs) / 25, rtol=1e-4, atol=1e-7)


def test_distillation_loss_resizes_small_logits_and_survives_no_labels() -> None:
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    probs = torch.softmax(torch.randn(1, 3, 8, 8), 1)
    assert distillation_loss(logits, probs, torch.zeros(1, 8, 8, dtype=torch.long)) > 0
    empty = distillation_loss(logits, probs, torch.full((1, 8, 8), IGNORE_INDEX))
    assert float(empty.detach()) == 0.0
    empty.backward()  # still attached to the graph


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.distill.tacher=camvid", "unknown key tacher; allowed: teacher, weight, temperature, scales, flip"),
        ("train.distill.weight=-1", "train.distill.weight=-1"),
        ("train.distill.temperature=0", "train.distill.temperature=0"),
        ("train.distill.scales=[]", "train.distill.scales=[]"),
        ("train.distill.flip=sometimes", "train.distill.flip='sometimes'"),
    ],
)
def test_distill_config_is_checked(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_overrides(Config(), ["train.distill.teacher=camvid", override])
    with pytest.raises(ConfigError, match=re.escape("train.distill.teacher is required")):
        apply_overrides(Config(), ["train.distill.weight=1"])


def test_build_teacher_names_the_shipped_models_and_checks_classes(tmp_path: Path) -> None:
    assert build_teacher(None, 11, torch.device("cpu")) is None
    with pytest.raises(ConfigError, match=r"neither a run folder, a checkpoint nor a shipped model \(camvid"):
        build_teacher({"teacher": "camvd"}, 11, torch.device("cpu"))
    with pytest.raises(ConfigError, match="predicts 11 classes; the student has 5"):
        build_teacher({"teacher": "camvid"}, 5, torch.device("cpu"))
    (tmp_path / "broken").mkdir()
    with pytest.raises(ConfigError, match=re.escape("train.distill.teacher")):
        build_teacher({"teacher": str(tmp_path / "broken")}, 11, torch.device("cpu"))
    teacher = build_teacher({"teacher": "camvid", "scales": [0.5, 1], "flip": True}, 11, torch.device("cpu"))
    assert teacher is not None and teacher.scales == (0.5, 1.0) and teacher.flip
    assert not any(p.requires_grad for p in teacher.model.parameters())
    probs = teacher.probabilities(torch.randint(0, 256, (1, 3, 32, 48), dtype=torch.uint8))
    assert probs.shape == (1, 11, 32, 48)
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 32, 48))


def test_a_run_distils_another_runs_multiscale_flip_predictions(tmp_path: Path) -> None:
    base = [*TINY, "--set", "train.iterations=2", "--set", f"output.dir={tmp_path}"]
    assert main(["train", *base, "--set", "output.name=teacher"]) == 0
    teacher = tmp_path / "teacher"
    argv = [
        "train", *base, "--set", "output.name=student", "--set", "train.log_every=1",
        "--set", f"train.distill={{teacher: {teacher}, weight: 0.5, temperature: 2, scales: [0.75, 1], flip: true}}",
    ]  # fmt: skip
    assert main(argv) == 0
    logged = [json.loads(line) for line in (tmp_path / "student" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in logged if "distill" in r]
    assert len(steps) == 2 and all(r["distill"] > 0 for r in steps)
    # The logged total includes the weighted term.
    assert all(r["loss"] == pytest.approx(r["main"] + 0.5 * r["distill"], rel=1e-4) for r in steps)
    # A resumed run rebuilds the teacher from its saved config.
    assert "distill" in (tmp_path / "student" / "config.yaml").read_text()
    assert main(["train", "--resume", str(tmp_path / "student"), "--set", "train.iterations=3", "--no-progress"]) == 0


def test_distill_from_a_missing_teacher_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", *TINY, "--set", f"output.dir={tmp_path}", "--set", "train.distill.teacher=no_such_model"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "train.distill.teacher='no_such_model'" in err and "camvid" in err and "Traceback" not in err

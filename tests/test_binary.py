"""Binary (one-channel, sigmoid) models: the bce loss and the losses a one-channel model may use;
0/255 masks read as 0/1 (128 ignored); training, evaluation and prediction (0/255 PNGs) end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from semseg import create_model
from semseg.cli import main
from semseg.data import build_dataset
from semseg.data.io import BINARY_IGNORE_VALUE
from semseg.errors import InvalidOptionError
from semseg.inference import Predictor
from semseg.losses import BCELoss, binary_cross_entropy, build_pixel_loss
from semseg.losses.criterion import SegmentationCriterion


def test_bce_matches_torch_and_ignores() -> None:
    logits = torch.randn(2, 1, 5, 6)
    target = torch.randint(0, 2, (2, 5, 6))
    target[0, :2] = 255
    keep = target != 255
    expected = F.binary_cross_entropy_with_logits(logits[:, 0][keep], target[keep].float())
    torch.testing.assert_close(binary_cross_entropy(logits, target), expected)
    weighted = F.binary_cross_entropy_with_logits(
        logits[:, 0][keep], target[keep].float(), pos_weight=torch.tensor(3.0)
    )
    torch.testing.assert_close(BCELoss(pos_weight=3.0)(logits, target), weighted)
    all_ignored = torch.full_like(target, 255)
    zero = binary_cross_entropy(logits.requires_grad_(), all_ignored)
    assert float(zero.detach()) == 0.0 and zero.requires_grad


def test_binary_default_and_allowed_losses() -> None:
    assert SegmentationCriterion(1).pixel_loss.names == ["bce"]
    assert SegmentationCriterion(1, loss=[{"name": "ce", "weight": 1.0}]).pixel_loss.names == ["bce"]
    loss = build_pixel_loss([{"name": "bce", "pos_weight": 2}, {"name": "dice"}, {"name": "lovasz"}], num_classes=1)
    value, parts = loss(torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 8, 8)))
    assert set(parts) == {"bce", "dice", "lovasz"} and torch.isfinite(value)
    for name in ("ce", "ohem", "focal"):
        with pytest.raises(InvalidOptionError, match="use dice, lovasz, bce"):
            build_pixel_loss([{"name": name}], num_classes=1)
    with pytest.raises(InvalidOptionError, match="one-channel"):
        build_pixel_loss([{"name": "bce"}], num_classes=3)
    with pytest.raises(InvalidOptionError, match="pos_weight"):
        build_pixel_loss([{"name": "bce", "pos_weight": 0}], num_classes=1)


# --- end to end: a binary folder dataset of 0/255 masks, trained, evaluated and predicted ---------

TINY = [
    "--set", "train.iterations=3", "--set", "data.crop_size=[32,32]", "--set", "data.batch_size=2",
    "--set", "data.max_val_images=2", "--set", "train.checkpoint_every=3", "--set", "train.precision=fp32",
    "--set", "model.name=naive_convnet", "--set", "model.options={width: 8, depth: 2}",
    "--set", "data.dataset=folder", "--no-progress",
]  # fmt: skip


def _binary_tree(root: Path, mask_values: tuple[int, int] = (0, 255), ignore: bool = True) -> None:
    """train/ and val/ with two 32x32 RGB images each: a bright square (foreground) on a dark field."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(2):
            image = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
            mask = np.full((32, 32), mask_values[0], np.uint8)
            image[8:24, 8 + i : 24 + i] += 150
            mask[8:24, 8 + i : 24 + i] = mask_values[1]
            if ignore:
                mask[0, :] = BINARY_IGNORE_VALUE
            Image.fromarray(image).save(root / split / "images" / f"im{i}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"im{i}.png")


def test_binary_masks_read_as_0_1_and_ignore(tmp_path: Path) -> None:
    _binary_tree(tmp_path / "ds")
    data = build_dataset("folder", tmp_path / "ds", "train", binary=True)
    assert data.classes == ["background", "foreground"]
    _, mask = data.load_pair(0)
    assert set(mask.unique().tolist()) == {0, 1, 255}
    assert int((mask[0] == 255).sum()) == 32


def test_binary_train_eval_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _binary_tree(tmp_path / "ds")
    argv = ["train", *TINY, "--set", f"data.root={tmp_path / 'ds'}", "--set", "data.binary=true"]
    assert main([*argv, "--set", f"output.dir={tmp_path}", "--set", "output.name=bin"]) == 0
    run = tmp_path / "bin"
    meta = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())
    assert meta["num_classes"] == 1 and meta["class_names"] == ["background", "foreground"]
    scores = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= scores["miou"] <= 1.0 and "foreground_iou" in scores
    assert main(["eval", str(run), "--no-progress", "--threshold", "0.3"]) == 0
    image = tmp_path / "ds" / "val" / "images" / "im0.png"
    assert main(["predict", str(image), "--model", str(run), "--out", str(tmp_path / "pred")]) == 0
    labels = np.asarray(Image.open(tmp_path / "pred" / "im0_labels.png"))
    assert labels.shape == (32, 32) and set(np.unique(labels)) <= {0, 255}
    capsys.readouterr()


def test_predictor_binary_labels_and_modes() -> None:
    model = create_model("naive_convnet", 1, width=4, depth=1).eval()
    model.set_metadata(["background", "foreground"])
    image = torch.randint(0, 255, (3, 20, 24), dtype=torch.uint8)
    plain = Predictor(model)(image)
    assert set(plain.unique().tolist()) <= {0, 1}
    probs = Predictor(model).scores(image)
    assert probs.shape == (2, 20, 24)
    torch.testing.assert_close(probs.sum(0), torch.ones(20, 24))
    assert torch.equal(plain, (probs[1] > 0.5).long())
    assert set(Predictor(model, scales=(0.75, 1.0), flip=True)(image).unique().tolist()) <= {0, 1}
    assert set(Predictor(model, crf=True)(image).unique().tolist()) <= {0, 1}
    assert int(Predictor(model, threshold=0.01)(image).sum()) >= int(plain.sum())


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("multiclass", "binary mask holds values [2]"),
        ("ce", "use dice, lovasz, bce"),
    ],
)
def test_binary_bad_inputs_one_line(
    case: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _binary_tree(tmp_path / "ds", mask_values=(0, 2) if case == "multiclass" else (0, 255))
    argv = ["train", *TINY, "--set", f"data.root={tmp_path / 'ds'}", "--set", f"output.dir={tmp_path}"]
    if case == "multiclass":
        argv += ["--set", "model.num_classes=1"]
    else:
        argv += ["--set", "data.binary=true", "--set", "train.loss=[{name: ce, weight: 2.0}]"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_encnet_se_term_binary() -> None:
    """A binary EncNet's one SE logit is trained on whether the image has foreground."""
    criterion = SegmentationCriterion(1)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[1, 0, 0] = 1
    se = torch.zeros(2, 1)
    _, terms = criterion(torch.randn(2, 1, 4, 4), target, {"se": se})
    assert abs(terms["se"] - float(F.binary_cross_entropy_with_logits(se, torch.tensor([[0.0], [1.0]])))) < 1e-6


def test_data_check_binary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _binary_tree(tmp_path / "ok")
    assert main(["data", "check", str(tmp_path / "ok"), "--dataset", "folder", "--binary"]) == 0
    _binary_tree(tmp_path / "bad", mask_values=(0, 2))
    assert main(["data", "check", str(tmp_path / "bad"), "--dataset", "folder", "--binary"]) == 1
    assert "binary mask holds values [2]" in capsys.readouterr().out

"""End to end through the CLI on the embedded sample: train, resume, eval, predict, and one
clear line with exit code 2 for every user error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import semseg
from semseg.cli import main
from semseg.data import SAMPLE_ROOT, build_dataset
from semseg.engine.schedule import poly_lr

TINY = [
    "--set", "train.iterations=2", "--set", "data.crop_size=[64,64]", "--set", "data.batch_size=2",
    "--set", "model.options.backbone_weights=null", "--set", "data.max_val_images=2",
    "--set", "train.checkpoint_every=1", "--set", "train.precision=fp32", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", *TINY, "--set", f"output.dir={out}", "--set", "output.name=tiny"]) == 0
    return out / "tiny"


def test_train_writes_a_complete_run_folder(run_dir: Path) -> None:
    for name in ("config.yaml", "metrics.json", "per_class.txt", "overlay.png", "log.jsonl", "eval.jsonl"):
        assert (run_dir / name).is_file(), name
    ckpt = run_dir / "checkpoints" / "last"
    assert {p.name for p in ckpt.iterdir()} == {"model.safetensors", "state.pt", "meta.json"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["per_class"]) >= {"Sky", "Road", "Bicyclist"}
    # The reported mIoU is the mean IoU over the classes present (nanmean), recomputed here
    # from the saved model's own predictions on the 2 val images with a numpy confusion matrix.
    model = semseg.load_model(run_dir)
    dataset = build_dataset("sample", None, "val")
    confusion = np.zeros((11, 11), dtype=np.int64)
    for i in range(2):
        image, mask = dataset[i]
        pred = semseg.predict(model, image).numpy().ravel()
        target = mask.numpy().ravel()
        keep = target != 255
        np.add.at(confusion, (target[keep], pred[keep]), 1)
    union = confusion.sum(0) + confusion.sum(1) - np.diag(confusion)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.diag(confusion) / union
    assert metrics["miou"] == pytest.approx(float(np.nanmean(iou)), abs=1e-9)
    reported = [v["iou"] for v in metrics["per_class"].values()]
    assert [r is None for r in reported] == list(np.isnan(iou))
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["config"]["train"]["iterations"] == 2 and meta["iteration"] == 2
    assert "Sky" in (run_dir / "per_class.txt").read_text()


def test_resume_continues_from_the_checkpoint(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    import yaml

    copy = tmp_path / "tiny"
    shutil.copytree(run_dir, copy)
    meta_path = copy / "checkpoints" / "last" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["train"]["iterations"] = 3  # pretend the run was longer and stopped at 2
    meta["config"]["output"]["dir"] = str(tmp_path)
    meta_path.write_text(json.dumps(meta))
    assert main(["train", "--resume", str(copy), "--no-progress"]) == 0
    log = [json.loads(line) for line in (copy / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [2, 3]  # logged at the end of each run
    assert log[-1]["lr"] == pytest.approx(poly_lr(2, 3, 1e-3, 0.9))  # the schedule continued
    state = torch.load(copy / "checkpoints" / "last" / "state.pt", weights_only=True)
    steps = {float(s["step"]) for s in state["optimizer"]["state"].values()}
    assert steps == {3.0}  # AdamW moments restored and stepped once more
    assert json.loads((copy / "checkpoints" / "last" / "meta.json").read_text())["iteration"] == 3
    assert yaml.safe_load((copy / "config.yaml").read_text())["train"]["iterations"] == 3


def test_resume_restores_the_weights(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file

    copy = tmp_path / "tiny"
    shutil.copytree(run_dir, copy)
    saved = load_file(str(run_dir / "checkpoints" / "last" / "model.safetensors"))
    meta_path = copy / "checkpoints" / "last" / "meta.json"
    meta = json.loads(meta_path.read_text())
    # One more step at learning rate 0: the parameters must come out as the checkpoint's.
    meta["config"]["train"].update(iterations=3, lr=0.0)
    meta["config"]["output"]["dir"] = str(tmp_path)
    meta_path.write_text(json.dumps(meta))
    assert main(["train", "--resume", str(copy), "--no-progress"]) == 0
    resumed = load_file(str(copy / "checkpoints" / "last" / "model.safetensors"))
    model = semseg.create_model(meta["model_name"], num_classes=11)
    parameters = [name for name, _ in model.named_parameters()]
    assert parameters and all(torch.equal(resumed[k], saved[k]) for k in parameters)


def test_eval_and_predict(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(run_dir), "--no-progress", "--out", str(tmp_path / "ev")]) == 0
    assert "mIoU" in capsys.readouterr().out
    # Same checkpoint, same 2 images, same inference, same layout: the same score as training's.
    trained = json.loads((run_dir / "metrics.json").read_text())["miou"]
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["miou"] == pytest.approx(trained, abs=1e-12)
    image = sorted((SAMPLE_ROOT / "val").iterdir())[0]
    assert main(["predict", str(image), "--model", str(run_dir), "--out", str(tmp_path / "pred")]) == 0
    labels = np.asarray(Image.open(tmp_path / "pred" / f"{image.stem}_labels.png"))
    assert labels.shape == (180, 240) and labels.max() < 11
    assert (tmp_path / "pred" / f"{image.stem}_overlay.png").is_file()


def test_list_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list-models", "deeplabv3plus*"]) == 0
    assert "deeplabv3plus_mobilenetv2" in capsys.readouterr().out.split()


BAD = [
    (
        ["train", "--set", "data.dataset=camvid", "--set", "data.root=/no/such/folder"],
        "CamVid root not found: /no/such/folder",
    ),
    (["train", "--set", "model.name=deeplabv9"], "unknown model 'deeplabv9'"),
    (["train", "--set", "data.rooot=x"], "unknown config key 'data.rooot'; allowed in data"),
    (["train", "--set", "model.options.output_stride=4"], "output_stride=4 is not possible here; allowed: 8, 16, 32"),
    (["train", "--config", "no_such_preset"], "config 'no_such_preset' not found"),
    (["eval", "/no/such/run"], "no checkpoint at /no/such/run"),
    (["predict", "missing.png", "--model", "deeplabv3plus_mobilenetv2"], "image not found: missing.png"),
    (["predict", "x.png", "--model", "nonet"], "unknown model 'nonet'"),
    (["bench", "--model", "nonet"], "unknown model 'nonet'"),
    (["weights", "import", "/no/file.pth"], "weights file not found"),
    (["list-models", "--bogus"], "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a[:3]) for a, _ in BAD])
def test_user_errors_give_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("semseg: error:") and message in err[0], err


def test_python_dash_m_is_the_same_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "semseg", "list-models", "fcn_resnet50*"], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["fcn_resnet50_d8"]
    bad = subprocess.run([sys.executable, "-m", "semseg", "train", "--set", "x=1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def _tree(root: Path, case: str) -> None:
    """A folder dataset (train/ and val/, each with images/ and masks/) broken in one way."""
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / split / "images" / "a.png")
        Image.fromarray(np.ones((16, 16), np.uint8)).save(root / split / "masks" / "a.png")
    train = root / "train"
    if case == "no-mask":
        (train / "masks" / "a.png").unlink()
    elif case == "size":
        Image.fromarray(np.ones((8, 16), np.uint8)).save(train / "masks" / "a.png")
    elif case == "label":
        Image.fromarray(np.full((16, 16), 9, np.uint8)).save(train / "masks" / "a.png")
    elif case == "corrupt":
        (train / "images" / "a.png").write_bytes(b"\x89PNG broken")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-mask", "has no mask"),
        ("size", "mask is 16x8 but image a.png is 16x16"),
        ("label", "label values [9] outside the 2 classes (0..1) and not ignore_index=255"),
        ("corrupt", "cannot read image"),
    ],
)
def test_broken_dataset_gives_one_line(
    case: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _tree(tmp_path / "ds", case)
    argv = [
        "train",
        *TINY,
        "--set",
        "data.dataset=folder",
        "--set",
        f"data.root={tmp_path / 'ds'}",
        "--set",
        "data.classes=[bg, fg]",
        "--set",
        f"output.dir={tmp_path}",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_data_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _tree(tmp_path / "ok", "none")
    assert main(["data", "check", str(tmp_path / "ok"), "--dataset", "folder", "--classes", "bg,fg"]) == 0
    assert "OK" in capsys.readouterr().out
    _tree(tmp_path / "bad", "label")
    assert main(["data", "check", str(tmp_path / "bad"), "--dataset", "folder", "--classes", "bg,fg"]) == 1
    assert main(["data", "check", str(tmp_path / "missing"), "--dataset", "camvid"]) == 2
    assert "dataset folder not found" in capsys.readouterr().err


def test_resuming_a_finished_run_is_a_clear_error(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
    assert "already finished its 2 iterations" in capsys.readouterr().err

"""The CamVid model shipped inside the package: loads offline without running code, carries its
scores, predicts real frames, and bad names or damaged files get one clear line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

import semseg
from semseg import pretrained
from semseg.cli import main
from semseg.data.camvid import CLASSES, PALETTE
from semseg.data.registry import SAMPLE_ROOT
from semseg.errors import CheckpointError, UnknownModelError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"
MAX_SHIPPED_MB = 30


def test_camvid_is_shipped_with_its_metadata_and_scores() -> None:
    assert "camvid" in pretrained.list_shipped()
    folder = pretrained.shipped_folder("camvid")
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:  # tensors only: nothing executes
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
    assert "F16" in dtypes and "F32" not in dtypes
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["class_names"] == list(CLASSES) and [tuple(c) for c in meta["palette"]] == list(PALETTE)
    assert meta["config"]["data"]["root"] is None  # recipes and --data-root decide, never a developer's path
    assert meta["config"]["train"]["init_from"] is None  # nor the path of the stage it started from
    assert "source" not in meta.get("bn_recalibration", {})
    scores = pretrained.shipped_scores("camvid")
    single = scores["single_scale"]
    assert scores["dataset"] == "camvid" and scores["split"] == "val"
    assert len(single["iou"]) == len(CLASSES) and 0 < single["miou"] <= 1
    assert abs(single["miou"] - float(np.nanmean(single["iou"]))) < 1e-6
    assert single["command"].startswith("semseg eval camvid")
    # What `semseg predict` runs by default on bf16 hardware stays within 0.1 points of float32.
    bf16 = scores["single_scale_bf16"]
    assert bf16["inference"]["precision"] == "bf16" and bf16["command"].endswith("--precision bf16")
    assert abs(bf16["miou"] - single["miou"]) <= 0.001


def test_shipped_models_stay_small() -> None:
    total = sum(f.stat().st_size for f in pretrained.SHIPPED_ROOT.rglob("*") if f.is_file())
    assert total <= MAX_SHIPPED_MB * 2**20, f"shipped files take {total / 2**20:.1f} MB"


def test_load_model_by_name_gives_a_float32_eval_model() -> None:
    model = semseg.load_model("camvid")
    assert not model.training and model.class_names == list(CLASSES)
    assert {p.dtype for p in model.parameters()} == {__import__("torch").float32}
    frame = np.asarray(Image.open(next((SAMPLE_ROOT / "val").glob("*.jpg"))).convert("RGB"))
    labels = semseg.predict(model, frame)
    assert labels.shape == frame.shape[:2] and int(labels.max()) < len(CLASSES)


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared CamVid copy (../shared/data/camvid) is absent")
def test_shipped_model_agrees_with_a_real_val_label() -> None:
    model = semseg.load_model("camvid")
    name = sorted((SHARED / "val").glob("*.png"))[50].name
    frame = np.asarray(Image.open(SHARED / "val" / name).convert("RGB"))
    label = np.asarray(Image.open(SHARED / "valannot" / name)).astype(np.int64)
    predicted = semseg.predict(model, frame).numpy()
    labelled = label < len(CLASSES)  # 11 is void
    agreement = float((predicted[labelled] == label[labelled]).mean())
    assert agreement >= 0.6, f"{name}: {agreement:.1%} of labelled pixels agree"


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared CamVid copy (../shared/data/camvid) is absent")
def test_semseg_eval_reproduces_the_stored_score(tmp_path: Path) -> None:
    """The stored single-scale score is what `semseg eval` measures for the shipped files (~30 s)."""
    assert main(["eval", "camvid", "--data-root", str(SHARED), "--out", str(tmp_path), "--no-progress"]) == 0
    measured = json.loads((tmp_path / "metrics.json").read_text())
    stored = pretrained.shipped_scores("camvid")["single_scale"]
    assert abs(measured["miou"] - stored["miou"]) < 1e-6
    assert np.allclose(measured["iou"], stored["iou"], atol=1e-6)


def test_cli_predicts_the_sample_frame_with_the_shipped_model(tmp_path: Path, capsys) -> None:
    frame = next((SAMPLE_ROOT / "val").glob("*.jpg"))
    assert main(["predict", str(frame), "--model", "camvid", "--out", str(tmp_path), "--no-progress"]) == 0
    label = Image.open(tmp_path / f"{frame.stem}_labels.png")
    assert label.mode == "P" and label.size == Image.open(frame).size
    assert (tmp_path / f"{frame.stem}_overlay.png").is_file()
    assert "untrained" not in capsys.readouterr().err  # a shipped model is a trained one


def test_an_unknown_model_lists_the_shipped_names(tmp_path: Path, capsys) -> None:
    code = main(["predict", str(next((SAMPLE_ROOT / "val").glob("*.jpg"))), "--model", "camvd", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "shipped model (camvid)" in err and "unknown model 'camvd'" in err
    with pytest.raises(UnknownModelError, match=r"no shipped model 'nope'; shipped: camvid"):
        pretrained.shipped_folder("nope")


@pytest.mark.parametrize("damage", ["truncate", "meta"])
def test_a_damaged_shipped_file_says_to_reinstall(tmp_path: Path, monkeypatch, capsys, damage: str) -> None:
    copy = tmp_path / "pretrained"
    shutil.copytree(pretrained.shipped_folder("camvid"), copy / "camvid")
    if damage == "truncate":
        weights = copy / "camvid" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        (copy / "camvid" / "meta.json").write_text("{not json")
    monkeypatch.setattr(pretrained, "SHIPPED_ROOT", copy)
    with pytest.raises(CheckpointError, match=r"the shipped model 'camvid' is damaged .*; reinstall semseg"):
        semseg.load_model("camvid")
    frame = next((SAMPLE_ROOT / "val").glob("*.jpg"))
    assert main(["predict", str(frame), "--model", "camvid", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reinstall semseg" in err


def test_eval_scores_the_shipped_model_on_a_data_root(tmp_path: Path, capsys) -> None:
    """``semseg eval camvid --data-root DIR``: here the embedded sample frames stand in for a
    user's copy of CamVid (same layout and classes)."""
    out = tmp_path / "scores"
    args = ["eval", "camvid", "--data-root", str(SAMPLE_ROOT), "--no-progress", "--out", str(out)]
    assert main([*args, "--set", "data.max_val_images=2"]) == 0
    assert "mIoU" in capsys.readouterr().out
    assert 0 <= json.loads((out / "metrics.json").read_text())["miou"] <= 1

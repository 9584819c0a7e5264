"""``semseg predict`` outputs people look at: palette label PNGs, overlays with a legend,
ground-truth panels, probability maps, folders and globs, and the images/s line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import semseg
from semseg.cli import main
from semseg.data import SAMPLE_ROOT
from semseg.engine.checkpoint import checkpoint_meta, save_checkpoint


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CamVid-classed model saved as a checkpoint (random weights: what matters is the files)."""
    from semseg.data import build_dataset

    data = build_dataset("sample", None, "val")
    model = semseg.create_model("fcn_resnet18_d8", num_classes=data.num_classes)
    model.set_metadata(data.classes, data.palette)
    folder = tmp_path_factory.mktemp("run")
    save_checkpoint(folder / "checkpoints" / "last", model, checkpoint_meta(model, channels_last=True))
    return folder


def _frames(tmp_path: Path, n: int = 2) -> Path:
    frames = tmp_path / "frames"
    frames.mkdir()
    for image in sorted((SAMPLE_ROOT / "val").glob("*.jpg"))[:n]:
        shutil.copy(image, frames / image.name)
    return frames


def test_palette_labels_overlay_legend_panel_and_probs(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = _frames(tmp_path)
    masks = tmp_path / "masks"
    masks.mkdir()
    for image in frames.iterdir():
        shutil.copy(SAMPLE_ROOT / "valannot" / f"{image.stem}.png", masks / f"{image.stem}.png")
    out = tmp_path / "out"
    assert (
        main(
            [
                "predict",
                str(frames),
                "--model",
                str(run),
                "--out",
                str(out),
                "--masks",
                str(masks),
                "--probs",
                "--no-progress",
            ]
        )
        == 0
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("2 image(s) in") and "images/s" in last
    model = semseg.load_model(run)
    for image_path in frames.iterdir():
        rgb = np.asarray(Image.open(image_path).convert("RGB"))
        labels = Image.open(out / f"{image_path.stem}_labels.png")
        assert labels.mode == "P" and labels.size == (rgb.shape[1], rgb.shape[0])
        ids = np.asarray(labels)
        assert ids.max() < 11
        assert labels.getpalette()[: 3 * 11] == [v for c in model.palette for v in c]
        assert np.array_equal(ids, semseg.predict(model, rgb).numpy())  # the PNG reads back as the label ids
        overlay = np.asarray(Image.open(out / f"{image_path.stem}_overlay.png"))
        assert overlay.shape[0] > rgb.shape[0] and overlay.shape[1] == rgb.shape[1]  # legend strip below
        changed = np.abs(overlay[: rgb.shape[0]].astype(int) - rgb).sum(-1) > 0
        coloured = np.array([any(c) for c in model.palette])[ids]  # classes whose colour is not black
        assert changed[coloured].mean() > 0.95  # the overlay differs from the image where a class is drawn
        panel = np.asarray(Image.open(out / f"{image_path.stem}_panel.png"))
        assert panel.shape == (rgb.shape[0], 3 * rgb.shape[1] + 8, 3)
        probs = np.load(out / f"{image_path.stem}_probs.npy")
        assert probs.shape == (11, *rgb.shape[:2]) and probs.dtype == np.float16
        np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=1e-2)


def test_globs_and_the_images_per_second_line(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = _frames(tmp_path, 3)
    assert (
        main(["predict", str(frames / "*.jpg"), "--model", str(run), "--out", str(tmp_path / "o"), "--no-progress"])
        == 0
    )
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("3 image(s) in") and "images/s" in line
    assert len(list((tmp_path / "o").glob("*_labels.png"))) == 3


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["nothing/*.png"], "no images match 'nothing/*.png'"),
        (["a.png", "clip.mp4"], "pass videos or images to one predict, not both"),
    ],
)
def test_bad_inputs_are_one_line(
    run: Path, inputs: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", *inputs, "--model", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err

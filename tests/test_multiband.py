"""Multi-band inputs: ``create_model(..., in_channels=N)`` for every model, and the rule that adapts a
pretrained first convolution (the mean of the RGB filters, repeated, scaled by 3 / N); 4-band ``.npy``
images trained, predicted and refused when the bands and ``model.in_channels`` differ."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semseg import create_model
from semseg.cli import main
from semseg.data.io import read_image
from semseg.errors import DataError, InvalidOptionError
from semseg.models import registry
from semseg.models.input_conv import adapt_input_conv, first_conv


def test_adapt_input_conv_rule() -> None:
    weight = torch.randn(8, 3, 3, 3)
    assert torch.equal(adapt_input_conv(weight, 3), weight)
    one = adapt_input_conv(weight, 1)
    torch.testing.assert_close(one, weight.sum(1, keepdim=True))
    five = adapt_input_conv(weight, 5)
    assert five.shape == (8, 5, 3, 3)
    torch.testing.assert_close(five, (weight.mean(1, keepdim=True) * 3 / 5).repeat(1, 5, 1, 1))
    with pytest.raises(InvalidOptionError):
        adapt_input_conv(torch.randn(8, 4, 3, 3), 2)


@pytest.mark.parametrize("name", ["fcn_resnet18_d8", "deeplabv3plus_mobilenetv2"])
@pytest.mark.parametrize("bands", [1, 4])
def test_pretrained_first_conv_sees_grey_as_rgb(name: str, bands: int, tmp_path: Path) -> None:
    """With random "pretrained" backbone weights, an N-band image of one grey channel repeated gives
    the RGB model's output for that grey image repeated in R, G and B."""
    torch.manual_seed(1)
    donor = create_model(name, 2, backbone_weights=None)
    path = tmp_path / "backbone.pth"
    torch.save(donor.backbone.state_dict(), path)
    torch.manual_seed(2)
    rgb = create_model(name, 2, backbone_weights=str(path)).eval()
    torch.manual_seed(2)
    multi = create_model(name, 2, backbone_weights=str(path), in_channels=bands).eval()
    assert first_conv(multi)[1].in_channels == bands
    assert multi.model_options["in_channels"] == bands
    assert len(multi.mean) == len(multi.std) == bands
    grey = torch.randn(1, 1, 40, 48)
    with torch.no_grad():
        expected = rgb(grey.repeat(1, 3, 1, 1))
        got = multi(grey.repeat(1, bands, 1, 1))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["naive_convnet", "unet", "pspnet_resnet50", "hrnetv2_w18", "fcn8s_vgg16"])
def test_in_channels_for_any_model(name: str) -> None:
    takes_weights = "backbone_weights" in inspect.signature(registry._REGISTRY[name]).parameters
    options = {"backbone_weights": None} if takes_weights else {}
    model = create_model(name, 2, in_channels=4, **options).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 4, 64, 64)).shape == (1, 2, 64, 64)
    assert len(model.mean) == 4
    again = create_model(name, 2, **model.model_options)
    assert first_conv(again)[1].in_channels == 4


def test_in_channels_must_be_positive() -> None:
    with pytest.raises(InvalidOptionError, match="in_channels"):
        create_model("naive_convnet", 2, in_channels=0)


# --- end to end: 4-band .npy images -----------------------------------------------------------------

TINY = [
    "--set", "train.iterations=2", "--set", "data.crop_size=[32,32]", "--set", "data.batch_size=2",
    "--set", "data.max_val_images=1", "--set", "train.checkpoint_every=2", "--set", "train.precision=fp32",
    "--set", "data.dataset=folder", "--set", "data.classes=[bg, fg]", "--no-progress",
]  # fmt: skip


def _npy_tree(root: Path, bands: int = 4) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(2):
            image = rng.integers(0, 65535, (32, 40, bands), dtype=np.uint16)
            mask = (rng.random((32, 40)) > 0.5).astype(np.uint8)
            np.save(root / split / "images" / f"im{i}.npy", image)
            Image.fromarray(mask).save(root / split / "masks" / f"im{i}.png")


def test_read_npy_image(tmp_path: Path) -> None:
    wide = np.arange(2 * 3 * 5, dtype=np.uint16).reshape(2, 3, 5) * 2000
    np.save(tmp_path / "a.npy", wide)
    image = read_image(tmp_path / "a.npy")
    assert image.dtype == torch.uint8 and image.shape == (5, 2, 3)
    assert torch.equal(image, torch.from_numpy((wide >> 8).astype(np.uint8)).permute(2, 0, 1))
    np.save(tmp_path / "grey.npy", np.zeros((4, 6), np.uint8))
    assert read_image(tmp_path / "grey.npy").shape == (1, 4, 6)
    np.save(tmp_path / "f.npy", np.zeros((4, 6, 2), np.float32))
    with pytest.raises(DataError, match="float32 pixels"):
        read_image(tmp_path / "f.npy")


@pytest.mark.parametrize("name", ["naive_convnet", "fcn_resnet18_d8"])
def test_four_band_train_and_predict(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _npy_tree(tmp_path / "ds")
    options = "{width: 8, depth: 2}" if name == "naive_convnet" else "{backbone_weights: null}"
    argv = ["train", *TINY, "--set", f"data.root={tmp_path / 'ds'}", "--set", f"model.name={name}"]
    argv += ["--set", f"model.options={options}", "--set", "model.in_channels=4"]
    argv += ["--set", "data.mean=[0.5, 0.5, 0.5, 0.5]", "--set", "data.std=[0.25, 0.25, 0.25, 0.25]"]
    assert main([*argv, "--set", f"output.dir={tmp_path}", "--set", "output.name=run"]) == 0
    meta = json.loads((tmp_path / "run" / "checkpoints" / "last" / "meta.json").read_text())
    assert meta["mean"] == [0.5] * 4 and meta["std"] == [0.25] * 4
    image = tmp_path / "ds" / "val" / "images" / "im0.npy"
    assert main(["predict", str(image), "--model", str(tmp_path / "run"), "--out", str(tmp_path / "pred")]) == 0
    labels = np.asarray(Image.open(tmp_path / "pred" / "im0_labels.png"))
    assert labels.shape == (32, 40) and set(np.unique(labels)) <= {0, 1}
    overlay = np.asarray(Image.open(tmp_path / "pred" / "im0_overlay.png"))
    assert overlay.shape[1:] == (40, 3) and overlay.shape[0] > 32  # the image, then the legend strip
    capsys.readouterr()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "model.in_channels=3 but the images have 4 bands"),
        (
            ["--set", "model.in_channels=4", "--set", "data.mean=[0.5]"],
            "data.mean has 1 values for model.in_channels=4",
        ),
        (["--set", "model.in_channels=4", "--set", "data.jitter=0.2"], "data.jitter works on 3-band RGB images"),
    ],
)
def test_band_mismatch_one_line(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _npy_tree(tmp_path / "ds")
    argv = ["train", *TINY, "--set", f"data.root={tmp_path / 'ds'}", "--set", "model.name=naive_convnet"]
    argv += ["--set", "model.options={width: 4, depth: 1}", "--set", "data.cache=false", *extra]
    assert main([*argv, "--set", f"output.dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_api_predict_takes_model_bands() -> None:
    import semseg

    model = create_model("naive_convnet", 1, in_channels=5, width=4, depth=1).eval()
    model.set_metadata(["background", "foreground"])
    labels = semseg.predict(model, np.zeros((10, 12, 5), np.uint8))
    assert labels.shape == (10, 12) and set(labels.unique().tolist()) <= {0, 1}
    with pytest.raises(DataError, match="HxWx5"):
        semseg.predict(model, np.zeros((10, 12, 3), np.uint8))

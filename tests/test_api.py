"""load_model / predict: ready models that carry their metadata, label maps at original size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import semseg
from semseg.engine.checkpoint import checkpoint_meta, save_checkpoint
from semseg.errors import CheckpointError, DataError, UnknownModelError


def _checkpoint(tmp_path):  # type: ignore[no-untyped-def]
    model = semseg.create_model("fcn_resnet18_d8", num_classes=3)
    model.set_metadata(["a", "b", "c"], [(1, 2, 3), (4, 5, 6), (7, 8, 9)], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    meta = checkpoint_meta(model, channels_last=True)
    assert meta == {
        "model_name": "fcn_resnet18_d8", "model_options": {}, "num_classes": 3, "channels_last": True,
        "class_names": ["a", "b", "c"], "palette": [[1, 2, 3], [4, 5, 6], [7, 8, 9]],
        "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "config": {},
    }  # fmt: skip
    save_checkpoint(tmp_path / "run" / "checkpoints" / "last", model, meta)
    return model.eval(), tmp_path / "run"


def test_load_model_restores_weights_and_metadata(tmp_path) -> None:  # type: ignore[no-untyped-def]
    original, run = _checkpoint(tmp_path)
    for path in (run, run / "checkpoints" / "last", run / "checkpoints" / "last" / "model.safetensors"):
        model = semseg.load_model(path)
        assert not model.training
        assert model.class_names == ["a", "b", "c"] and model.palette[2] == (7, 8, 9)
        assert model.mean == (0.5, 0.5, 0.5) and model.std == (0.25, 0.25, 0.25)
        x = torch.randn(1, 3, 33, 47)
        with torch.no_grad():
            assert torch.equal(model(x), original(x))


def test_the_saved_layout_is_the_loaded_layout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def nhwc(model: torch.nn.Module) -> bool:
        weight = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d)).weight
        return weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()

    for layout in (False, True):
        model = semseg.create_model("fcn_resnet18_d8", num_classes=2, channels_last=layout)
        model.set_metadata(["a", "b"], [(0, 0, 0), (1, 1, 1)])
        folder = tmp_path / str(layout)
        save_checkpoint(folder, model, checkpoint_meta(model, channels_last=layout))
        assert nhwc(semseg.load_model(folder)) is layout


def test_predict_accepts_arrays_tensors_and_lists(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, run = _checkpoint(tmp_path)
    model = semseg.load_model(run)
    hwc = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    labels = semseg.predict(model, hwc)
    assert labels.dtype == torch.int64 and labels.shape == (37, 53) and labels.max() < 3
    chw = torch.from_numpy(hwc).permute(2, 0, 1)
    assert torch.equal(semseg.predict(model, chw), labels)
    # predict normalises with the model's own mean/std
    x = (chw[None].float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        assert torch.equal(model(x).argmax(1)[0], labels)
    many = semseg.predict(model, [hwc, hwc[:20, :30]])
    assert [m.shape for m in many] == [(37, 53), (20, 30)]


def test_predict_and_load_model_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = semseg.load_model("fcn_resnet18_d8", num_classes=4)
    assert model.class_names == ["class_0", "class_1", "class_2", "class_3"]
    with pytest.raises(DataError, match="uint8"):
        semseg.predict(model, np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(DataError, match="HxWx3"):
        semseg.predict(model, np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(UnknownModelError, match="unknown model"):
        semseg.load_model("fcn_nothing")
    with pytest.raises(DataError, match="checkpoint not found"):
        semseg.load_model(str(tmp_path / "no" / "run"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        semseg.load_model(tmp_path / "empty")


def test_create_model_rejects_unknown_options() -> None:
    with pytest.raises(ValueError, match=r"no option outputstride; allowed: .*output_stride"):
        semseg.create_model("deeplabv3plus_mobilenetv2", outputstride=8)
    with pytest.raises(ValueError, match="num_classes"):
        semseg.create_model("fcn_resnet18_d8", num_classes=0)


def test_predict_runs_in_auto_precision_unless_told(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`semseg.predict` and `semseg predict` autocast as PREDICT_PRECISION says (bf16 where the
    hardware has it); an explicit precision wins; `semseg eval` stays float32 (its config's)."""
    from semseg.cli import main
    from semseg.constants import PREDICT_PRECISION
    from semseg.inference import Predictor

    seen: list[str] = []
    original = Predictor.__init__

    def spy(self: Predictor, model: torch.nn.Module, **kwargs: object) -> None:
        seen.append(str(kwargs.get("precision", "fp32")))
        original(self, model, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Predictor, "__init__", spy)
    model = semseg.load_model("camvid")
    frame = np.zeros((24, 32, 3), dtype=np.uint8)
    semseg.predict(model, frame)
    semseg.predict(model, frame, precision="fp32")
    Image.fromarray(frame).save(tmp_path / "f.png")
    assert main(["predict", str(tmp_path / "f.png"), "--model", "camvid", "--out", str(tmp_path / "a")]) == 0
    assert PREDICT_PRECISION == "auto"
    assert seen == ["auto", "fp32", "auto"]

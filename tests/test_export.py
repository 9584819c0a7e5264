"""``semseg export`` and ``predict --backend onnxruntime``: ONNX Runtime matches PyTorch on two
input sizes (a fast subset of networks here; every registered one in test_export_all.py, marked
slow), a fixed-size fallback that says why, the op named when a format cannot express it, the
files the CLI writes, and the one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import semseg
from semseg.cli import main
from semseg.data import SAMPLE_ROOT
from semseg.engine.checkpoint import checkpoint_meta, save_checkpoint
from semseg.errors import DataError, ExportError
from semseg.export import OnnxRuntimeModel, export_model, load_program
from semseg.export.exporter import ATOL, RTOL, compare
from semseg.export.metadata import AXES

pytest.importorskip("onnx", reason='the onnx extra is not installed: pip install "semseg[onnx]"')
pytest.importorskip("onnxruntime", reason='the onnx extra is not installed: pip install "semseg[onnx]"')

SIZES = ((1, 64, 64), (2, 96, 80))  # (N, H, W): the export size, then one that is no multiple of 32
# A representative subset: plain convs, separable convs + ASPP + decoder (MobileNetV2), a dilated ResNet.
FAST_MODELS = ["naive_convnet", "deeplabv3plus_mobilenetv2", "fcn_resnet18_d8"]


def assert_close(model: nn.Module, run: nn.Module | object, shapes: tuple[tuple[int, int, int], ...]) -> None:
    """``run(x)`` equals ``model(x)`` within the stated tolerance on seeded inputs of ``shapes``."""
    for n, h, w in shapes:
        x = torch.randn(n, len(model.mean), h, w, generator=torch.Generator().manual_seed(h * w))
        with torch.no_grad():
            ref = model(x)
            got = run(x)  # type: ignore[operator]
        assert got.shape == ref.shape, (n, h, w)
        err = float((got - ref).abs().max())
        assert err <= ATOL + RTOL * float(ref.abs().max()), (n, h, w, err)
        assert (got.argmax(1) == ref.argmax(1)).float().mean() > 0.999


@pytest.mark.parametrize("name", FAST_MODELS)
def test_onnxruntime_matches_pytorch_on_two_sizes(name: str, tmp_path: Path) -> None:
    model = semseg.create_model(name, num_classes=3).eval()
    report = export_model(model, tmp_path / "m.onnx", size=(64, 64), check=False)
    assert report.dynamic == AXES and report.static_reason is None
    assert_close(model, OnnxRuntimeModel(report.path, threads=1), SIZES)


def _tiny() -> semseg.SegmentationModel:
    return semseg.create_model("naive_convnet", num_classes=3, width=8, depth=2).eval()


def test_report_checks_two_sizes_and_file_carries_metadata(tmp_path: Path) -> None:
    model = _tiny().set_metadata(["road", "car", "sky"], [(1, 2, 3), (4, 5, 6), (7, 8, 9)], mean=(0.1, 0.2, 0.3))
    report = export_model(model, tmp_path / "m.onnx", size=(64, 64))
    assert [c.shape for c in report.checks] == [(1, 3, 64, 64), (2, 3, 96, 80)]
    assert all(c.ok and c.max_rel < 1e-5 for c in report.checks)
    assert "parity 2x3x96x80" in report.summary()
    runtime = OnnxRuntimeModel(report.path)
    assert runtime.class_names == ["road", "car", "sky"] and runtime.palette == [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    assert runtime.mean == (0.1, 0.2, 0.3) and runtime.num_classes == 3 and runtime.fixed_size is None
    with pytest.raises(DataError, match="--overwrite"):
        export_model(model, report.path, size=(64, 64))


def test_torch_export_program_matches_on_two_sizes(tmp_path: Path) -> None:
    model = _tiny()
    report = export_model(model, tmp_path / "m.pt2", fmt="torch-export", size=(64, 64), check=False)
    assert report.dynamic == AXES
    program, meta = load_program(report.path)
    assert meta["model_name"] == "naive_convnet" and meta["dynamic"] == list(AXES)
    assert_close(model, program.module(), SIZES)


class PooledNet(nn.Module):
    """A PSPNet-like toy: stride-4 conv, a 3x3 adaptive average pool (no ONNX op for a dynamic
    input size), back to the input size."""

    def __init__(self) -> None:
        super().__init__()
        self.mean, self.std, self.num_classes = (0.5, 0.5, 0.5), (0.2, 0.2, 0.2), 2
        self.conv = nn.Conv2d(3, 2, 4, stride=4)
        self.pool = nn.AdaptiveAvgPool2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = y + nn.functional.interpolate(self.pool(y), size=y.shape[-2:], mode="bilinear")
        return nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear")


class UnpoolNet(PooledNet):
    """SegNet's decoder step: max-unpooling to a given output size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x)
        y, idx = nn.functional.max_pool2d(z, 2, return_indices=True)
        return nn.functional.max_unpool2d(y, idx, 2, output_size=z.shape[-2:])


def test_fixed_size_fallback_names_the_op_and_runtime_refuses_other_sizes(tmp_path: Path) -> None:
    model = PooledNet().eval()
    report = export_model(model, tmp_path / "p.onnx", size=(48, 48))  # 12x12 map: 3 bins fit
    assert report.dynamic == ("batch",) and "adaptive_avg_pool2d" in (report.static_reason or "")
    assert [c.shape for c in report.checks] == [(1, 3, 48, 48), (2, 3, 48, 48)] and all(c.ok for c in report.checks)
    runtime = OnnxRuntimeModel(report.path)
    with pytest.raises(DataError, match="--mode slide --crop 48x48"):
        runtime(torch.zeros(1, 3, 64, 64))


def test_op_the_format_cannot_express_is_named(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ExportError, match=r"adaptive_avg_pool2d.*--size"):  # 10x10 map: no fixed 3 bins either
        export_model(PooledNet().eval(), tmp_path / "p.onnx", size=(40, 40))
    out, err = capfd.readouterr()  # the exporter's C++ dump of the whole graph is kept out
    assert "graph" not in out + err
    with pytest.raises(ExportError, match=r"max_unpool2d.*--dynamo"):
        export_model(UnpoolNet().eval(), tmp_path / "u.onnx", size=(40, 40))
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = semseg.create_model("naive_convnet", num_classes=3, width=8, depth=2)
    model.set_metadata(["a", "b", "c"], [(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    folder = tmp_path_factory.mktemp("run")
    save_checkpoint(folder / "checkpoints" / "last", model, checkpoint_meta(model, channels_last=True))
    return folder


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = sorted((SAMPLE_ROOT / "val").glob("*.jpg"))[0]
    path = tmp_path_factory.mktemp("img") / "frame.png"
    Image.open(frame).convert("RGB").resize((80, 60)).save(path)
    return path


def test_cli_export_run_then_predict_with_onnxruntime(
    run: Path, image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(run), "--size", "64x64"]) == 0
    out = capsys.readouterr().out
    assert (run / "model.onnx").is_file() and "parity 2x3x96x80" in out and "OUTSIDE" not in out
    assert main(["export", str(run), "--size", "64x64"]) == 2  # not overwritten unasked
    assert capsys.readouterr().err.strip().endswith("exists; pass --overwrite to replace it")
    labels = {}
    for backend in ("torch", "onnxruntime"):
        folder = tmp_path / backend
        command = ["predict", str(image), "--model", str(run), "--backend", backend, "--precision", "fp32"]
        assert main([*command, "--out", str(folder)]) == 0
        labels[backend] = np.asarray(Image.open(folder / "frame_labels.png"))
    assert labels["torch"].shape == (60, 80)
    assert (labels["torch"] == labels["onnxruntime"]).mean() > 0.999


def test_onnxruntime_backend_exports_the_shipped_model_in_memory(
    image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--model camvid --backend onnxruntime`` with no export anywhere: exported in memory
    (said on stderr), nothing written beside the outputs, the same labels as PyTorch."""
    monkeypatch.chdir(tmp_path)  # no camvid.onnx here
    labels = {}
    for backend in ("torch", "onnxruntime"):
        folder = tmp_path / backend
        # float32 on both sides: the export is compared with the exact path (predict's default,
        # `auto`, is bf16 on a CPU with native bf16)
        command = ["predict", str(image), "--model", "camvid", "--backend", backend, "--precision", "fp32"]
        assert main([*command, "--out", str(folder)]) == 0
        labels[backend] = np.asarray(Image.open(folder / "frame_labels.png"))
    err = capsys.readouterr().err
    assert "exported camvid to ONNX in memory" in err and "semseg export camvid" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnxruntime", "torch"]
    assert (labels["torch"] == labels["onnxruntime"]).mean() > 0.999


def test_cli_unsupported_op_is_one_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code = main(["export", "encdec_vgg16", "--num-classes", "3", "--size", "64x64", "--out", str(tmp_path / "s.onnx")])
    err = capfd.readouterr().err  # file-descriptor level: the exporter's C++ graph dump must not show
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("semseg: error: encdec_vgg16 cannot be exported") and "max_unpool2d" in lines[-1]
    assert len(lines) == 2 and "random weights" in lines[0] and "Traceback" not in err


def test_backend_needs_the_extra_and_an_export(
    run: Path, image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "no_export"
    other.mkdir()
    args = ["predict", str(image), "--model", str(other), "--backend", "onnxruntime", "--out", str(tmp_path / "p")]
    assert main(args) == 2
    assert "make one with: semseg export" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'pip install "semseg[onnx]"' in err


def test_an_export_that_fails_at_the_second_size_is_a_mismatch() -> None:
    """The --dynamo SegNet graph ran at its export size and raised in ONNX Runtime at another
    (ScatterND index out of range): a failure to run is a failed check, not a crash."""
    model = _tiny()

    def run(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 64:
            raise RuntimeError("ScatterND: invalid indice found")
        return model(x)

    first, second = compare(model, run, [(1, 64, 64), (2, 96, 80)])
    assert first.ok and first.error is None
    assert not second.ok and "ScatterND" in (second.error or "")

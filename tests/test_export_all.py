"""Every registered network exported to ONNX and run by ONNX Runtime against PyTorch on two input
sizes (random weights, 3 classes). Marked slow: ~30 networks of up to 135 M parameters take
minutes on 2 cores (`pytest -m slow tests/test_export_all.py`); tests/test_export.py runs a
representative subset by default. docs/export.md is the measured table of the same runs
(`python -m semseg.export.check_all`)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
import torch

import semseg
from semseg.errors import ExportError
from semseg.export import OnnxRuntimeModel, export_model
from semseg.export.check_all import random_model
from semseg.export.exporter import ATOL, RTOL, second_size
from semseg.export.metadata import AXES

pytest.importorskip("onnx", reason='the onnx extra is not installed: pip install "semseg[onnx]"')
pytest.importorskip("onnxruntime", reason='the onnx extra is not installed: pip install "semseg[onnx]"')

SIZE = (96, 96)  # PSPNet's fixed-size fallback needs its stride-8 map (12x12) to split into 1, 2, 3, 6 bins
# What the TorchScript exporter cannot do, by model-name pattern: the op it names.
NO_EXPORT = {"encdec_vgg16": "max_unpool2d"}  # SegNet: F.max_unpool2d's output-size check under tracing
FIXED_SIZE = {"pspnet_*": "adaptive_avg_pool2d"}  # bins 2, 3, 6 of a map whose size the graph must know


def _expected(table: dict[str, str], name: str) -> str | None:
    return next((op for pattern, op in table.items() if fnmatch.fnmatch(name, pattern)), None)


@pytest.mark.slow
@pytest.mark.parametrize("name", semseg.list_models())
def test_every_model_exports_or_names_the_op(name: str, tmp_path: Path) -> None:
    model = random_model(name)  # FCN's zero-initialised score layers randomised: no all-zero output
    with torch.no_grad():
        assert model(torch.randn(1, 3, *SIZE)).abs().max() > 0
    op = _expected(NO_EXPORT, name)
    if op:
        with pytest.raises(ExportError, match=op):
            export_model(model, tmp_path / "m.onnx", size=SIZE, check=False)
        return
    report = export_model(model, tmp_path / "m.onnx", size=SIZE, check=False)  # one export, two sizes
    fixed = _expected(FIXED_SIZE, name)
    if fixed:
        assert report.dynamic == ("batch",) and fixed in (report.static_reason or "")
        shapes = [(1, *SIZE), (2, *SIZE)]
    else:
        assert report.dynamic == AXES, report.static_reason
        shapes = [(1, *SIZE), (2, *second_size(SIZE))]
    runtime = OnnxRuntimeModel(report.path, threads=1)
    for n, h, w in shapes:
        x = torch.randn(n, 3, h, w)
        with torch.no_grad():
            ref, got = model(x), runtime(x)
        assert got.shape == ref.shape == (n, 3, h, w)
        assert float((got - ref).abs().max()) <= ATOL + RTOL * float(ref.abs().max()), (n, h, w)

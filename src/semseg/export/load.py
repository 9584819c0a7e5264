"""The ONNX Runtime model behind ``semseg predict --backend onnxruntime``: a model's export, or
the model exported in memory where it has none (here, not in ``runtime``, because exporting
needs the exporter, which itself runs exports through ``runtime`` to check them)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from semseg.api import load_model
from semseg.errors import DataError, SemsegError
from semseg.export.exporter import export_model
from semseg.export.runtime import ONNX_NAME, OnnxRuntimeModel, find_onnx, require_onnxruntime


def load_onnx_model(name: str | Path, verbose: bool = False) -> OnnxRuntimeModel:
    """The ONNX Runtime model for ``predict --model NAME --backend onnxruntime``: the export
    :func:`find_onnx` finds, or, where there is none but ``NAME`` is a shipped model, a run or a
    checkpoint, that model exported in memory first (checked against PyTorch on two sizes; a few
    seconds: ``semseg export NAME`` keeps the file for next time). Says what to install first
    when onnxruntime is missing; ``verbose`` prints a line to stderr when it exports."""
    require_onnxruntime()
    try:
        return OnnxRuntimeModel(find_onnx(name))
    except DataError as missing:
        no_export = missing
    try:
        model = load_model(name)
    except SemsegError:
        raise no_export from None  # neither an export nor a model: say how to make an export
    with tempfile.TemporaryDirectory(prefix="semseg-onnx-") as folder:
        report = export_model(model, Path(folder) / ONNX_NAME, "onnx")
        runtime = OnnxRuntimeModel((Path(folder) / ONNX_NAME).read_bytes())
    if verbose:
        fixed = f"; fixed input size: {report.static_reason}" if report.static_reason else ""
        print(
            f"exported {name} to ONNX in memory ({report.seconds:.1f} s{fixed}); keep it with: semseg export {name}",
            file=sys.stderr,
        )
    return runtime

"""Export: a model as ONNX (run by ONNX Runtime) or as a ``torch.export`` program.

- :func:`export_model`: dynamic batch, height and width where the network allows it (else a
  fixed size and the reason), checked against PyTorch on two input sizes; :class:`ExportReport`.
- :class:`OnnxRuntimeModel`: an exported ONNX file behind the module interface the
  :class:`~semseg.inference.Predictor` uses (``semseg predict --backend onnxruntime``).
- :func:`load_program`: a ``.pt2`` archive and its metadata.

The exporters and onnxruntime are the optional extra ``pip install "semseg[onnx]"``; importing
this package needs none of them.
"""

from semseg.export.exporter import FORMATS, ExportReport, Parity, default_output, export_model
from semseg.export.load import load_onnx_model
from semseg.export.runtime import OnnxRuntimeModel, find_onnx, require_onnxruntime
from semseg.export.to_torch_export import load_program

__all__ = [
    "FORMATS",
    "ExportReport",
    "OnnxRuntimeModel",
    "Parity",
    "default_output",
    "export_model",
    "find_onnx",
    "load_onnx_model",
    "load_program",
    "require_onnxruntime",
]

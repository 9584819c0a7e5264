"""An exported ONNX model run by ONNX Runtime (https://onnxruntime.ai) behind the interface the
:class:`~semseg.inference.Predictor` uses: ``model(x)`` gives logits, and the model carries
``mean``, ``std``, ``num_classes``, ``class_names`` and ``palette``. So ``semseg predict
--backend onnxruntime`` runs every inference mode (whole, sliding window, multi-scale, flip)
through ONNX Runtime with no other change.

onnxruntime is an optional extra (``pip install "semseg[onnx]"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from semseg.errors import DataError, ExportError, SemsegError
from semseg.export.metadata import KEY, parse_metadata

INSTALL_HINT = 'the onnxruntime backend needs onnxruntime, which is not installed: pip install "semseg[onnx]"'
ONNX_NAME = "model.onnx"  # what `semseg export RUN` writes into the run folder


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or a one-line :class:`~semseg.errors.SemsegError` saying what to install."""
    try:
        import onnxruntime
    except ImportError:
        raise SemsegError(INSTALL_HINT) from None
    return onnxruntime


def find_onnx(name: str | Path) -> Path:
    """The ONNX file for ``--model``: the file itself, ``model.onnx`` in a run or checkpoint
    folder, or ``NAME.onnx`` here for a model name (where ``semseg export`` puts each)."""
    path = Path(name)
    if path.is_file():
        return path
    if path.is_dir() and (path / ONNX_NAME).is_file():
        return path / ONNX_NAME
    if not path.exists() and Path(f"{name}.onnx").is_file():
        return Path(f"{name}.onnx")
    raise DataError(
        f"no ONNX export for {name} (an .onnx file, a folder holding {ONNX_NAME}, or {name}.onnx here); "
        f"make one with: semseg export {name} --format onnx"
    )


class OnnxRuntimeModel(nn.Module):
    """An ONNX file written by ``semseg export`` as a parameterless module: CPU float32 tensors
    in, logits out.

    Args:
        path: the ``.onnx`` file (its metadata gives classes, palette, mean and std), or its bytes.
        threads: ONNX Runtime's intra-op threads (``None``: as many as PyTorch uses).

    Shape:
        x ``(N, B, H, W)`` normalised float -> logits ``(N, num_classes, H, W)``; a model exported
        at a fixed size takes only that ``(H, W)`` (``fixed_size``).
    """

    inference_only = True  # the Predictor runs it as is (no batch-norm folding)

    def __init__(self, path: str | Path | bytes, threads: int | None = None) -> None:
        super().__init__()
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()  # OMP_NUM_THREADS, as PyTorch
        options.inter_op_num_threads = 1
        source = path if isinstance(path, bytes) else str(path)
        name = "the exported model" if isinstance(path, bytes) else str(path)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ExportError(f"ONNX Runtime cannot load {name}: {str(exc).splitlines()[0]}") from None
        meta = parse_metadata(self.session.get_modelmeta().custom_metadata_map.get(KEY), name)
        self.name = Path(name).name
        self.metadata_dict = meta
        self.num_classes: int | None = meta["num_classes"]
        self.mean = tuple(float(v) for v in meta["mean"])
        self.std = tuple(float(v) for v in meta["std"])
        self.class_names: list[str] | None = meta.get("class_names")
        palette = meta.get("palette")
        self.palette = None if palette is None else [tuple(int(v) for v in c) for c in palette]
        self.model_name: str | None = meta.get("model_name")
        dynamic = set(meta.get("dynamic", ()))
        self.fixed_size: tuple[int, int] | None = (
            None if {"height", "width"} <= dynamic else tuple(meta["size"])  # type: ignore[assignment]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.eval()

    @property
    def is_binary(self) -> bool:
        return self.num_classes == 1

    @property
    def num_labels(self) -> int:
        return 2 if self.num_classes == 1 else int(self.num_classes or 0)

    def forward(self, x: Tensor) -> Tensor:
        if self.fixed_size is not None and tuple(x.shape[-2:]) != self.fixed_size:
            h, w = self.fixed_size
            raise DataError(
                f"{self.name} was exported at a fixed size {h}x{w} and got {x.shape[-2]}x{x.shape[-1]}; "
                f"run it on {h}x{w} tiles: --mode slide --crop {h}x{w}"
            )
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        out = self.session.run(None, {self.input_name: array})[0]
        return torch.from_numpy(out).to(x.device)

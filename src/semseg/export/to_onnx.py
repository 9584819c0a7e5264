"""A model as ONNX bytes (https://onnx.ai), with the semseg metadata in ``metadata_props``.

Two exporters: the TorchScript-based one (``dynamo=False``, the default: it traces one forward
pass, takes seconds, and its outputs match PyTorch to ~1e-6 relative on every network it
exports) and the ``torch.export``-based one (``dynamo=True``: it also exports SegNet's
``max_unpool2d``, but took 1-2 minutes per network on a 2-core CPU). Input ``image``
``(N, B, H, W)`` normalised float32 -> output ``logits`` ``(N, C, H, W)``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from semseg.export.metadata import KEY

INPUT, OUTPUT = "image", "logits"


def example_input(model: nn.Module, size: Sequence[int], batch: int = 1) -> torch.Tensor:
    """A seeded normal ``(batch, B, H, W)`` input (``B = len(model.mean)``)."""
    bands = len(getattr(model, "mean", (0, 0, 0)))
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, bands, int(size[0]), int(size[1]), generator=generator)


def onnx_bytes(
    model: nn.Module,
    size: Sequence[int],
    dynamic: Sequence[str],
    opset: int,
    metadata: dict[str, Any],
    dynamo: bool = False,
) -> bytes:
    """The serialised ONNX model of ``model`` (in eval mode) traced at ``size`` ``(H, W)``, with
    ``dynamic`` axes (``batch``, ``height``, ``width``) left symbolic. Raises what the exporter
    raises (see :mod:`semseg.export.failure`)."""
    import onnx

    axes = {i: name for i, name in ((0, "batch"), (2, "height"), (3, "width")) if name in dynamic}
    with warnings.catch_warnings():  # the tracer's TracerWarnings are about shapes we make dynamic
        warnings.simplefilter("ignore")
        if dynamo:
            from torch.export import Dim

            # Batch 2: torch.export specialises an example dimension of size 1.
            x = example_input(model, size, batch=2)
            shapes = {i: Dim(name, min=2 if name == "batch" else 16, max=8192) for i, name in axes.items()}
            program = torch.onnx.export(
                model,
                (x,),
                None,
                dynamo=True,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_shapes=(shapes,),
                opset_version=opset,
                verbose=False,
            )
            proto = program.model_proto  # type: ignore[union-attr]
        else:
            buffer = io.BytesIO()
            with _native_output_discarded():
                _torchscript_export(model, size, axes, opset, buffer)
            proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = KEY, json.dumps(metadata)
    return proto.SerializeToString()


def _torchscript_export(
    model: nn.Module, size: Sequence[int], axes: dict[int, str], opset: int, buffer: io.BytesIO
) -> None:
    torch.onnx.export(
        model,
        (example_input(model, size),),
        buffer,
        dynamo=False,
        input_names=[INPUT],
        output_names=[OUTPUT],
        dynamic_axes={INPUT: axes, OUTPUT: axes},
        opset_version=opset,
        do_constant_folding=True,
    )


@contextlib.contextmanager
def _native_output_discarded() -> Iterator[None]:
    """File descriptors 1 and 2 pointed at /dev/null: when the TorchScript exporter fails it
    writes the whole graph (thousands of lines) to the process's stdout from C++; the error we
    raise names the op instead."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)

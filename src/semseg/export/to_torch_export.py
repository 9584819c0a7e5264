"""A model as a ``torch.export`` program (https://pytorch.org/docs/stable/export.html), saved as
a ``.pt2`` archive with the semseg metadata as the extra file ``semseg.json``.

``torch.export`` proves each dynamic axis: a network whose Python code needs a condition on the
input size (a crop that must fit, an integer division that must be exact) fails with that
condition (the "guard"), and :func:`semseg.export.export_model` then exports it at a fixed size.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semseg.errors import ExportError
from semseg.export.metadata import EXTRA_FILE, parse_metadata
from semseg.export.to_onnx import example_input


def export_program(model: nn.Module, size: Sequence[int], dynamic: Sequence[str]) -> torch.export.ExportedProgram:
    """``torch.export.export`` of ``model`` (eval mode) at ``size`` ``(H, W)`` with the ``dynamic``
    axes symbolic (batch from 1, height and width from 32, up to 8192).

    ``Dim.DYNAMIC``, not a named ``Dim``: a guard torch.export cannot prove for every size (ceil-mode
    pooling gives ``2 * (h // 2) < h + 1``, true but unproven) is kept as a check instead of
    failing the export; an axis it had to specialise is reported by :func:`specialised_axes`.
    Raises :class:`~semseg.errors.ExportError` naming the axes torch.export fixed to the example."""
    from torch.export import Dim

    # Batch 2 in the example: torch.export would specialise a dimension of size 1.
    x = example_input(model, size, batch=2)
    index = {"batch": 0, "height": 2, "width": 3}
    shapes = {index[a]: Dim.DYNAMIC(min=1 if a == "batch" else 32, max=8192) for a in dynamic}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(model, (x,), dynamic_shapes=(shapes,), strict=False)
    fixed = [a for a in specialised_axes(program) if a in dynamic]
    if fixed:
        raise ExportError(f"torch.export specialised {', '.join(fixed)} to the example input (a guard on the size)")
    return program


def specialised_axes(program: torch.export.ExportedProgram) -> list[str]:
    """The axes (``batch``, ``height``, ``width``) of the program's image input that are plain
    integers, not symbols."""
    name = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == name)
    shape = node.meta["val"].shape
    return [a for a, i in (("batch", 0), ("height", 2), ("width", 3)) if isinstance(shape[i], int)]


def save_program(program: torch.export.ExportedProgram, path: Path, metadata: dict[str, Any]) -> None:
    """Write ``program`` and its metadata to ``path`` (a ``.pt2`` archive)."""
    with warnings.catch_warnings():  # "No complete tensor found in the group": CPU weights, harmless
        warnings.simplefilter("ignore")
        torch.export.save(program, str(path), extra_files={EXTRA_FILE: json.dumps(metadata)})


def load_program(path: str | Path) -> tuple[torch.export.ExportedProgram, dict[str, Any]]:
    """The program and metadata of a ``.pt2`` file written by :func:`save_program`; run it with
    ``program.module()(x)``."""
    extra = {EXTRA_FILE: ""}
    try:
        with warnings.catch_warnings():  # "No complete tensor found in the group": CPU weights, harmless
            warnings.simplefilter("ignore")
            program = torch.export.load(str(path), extra_files=extra)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ExportError(f"cannot read the torch.export archive {path}: {exc}") from None
    return program, parse_metadata(extra[EXTRA_FILE], str(path))

"""What an exported file carries besides the network: the label semantics and normalisation a
predictor needs (class names, palette, mean, std), the model's name and options, and which input
axes are dynamic. Stored as one JSON string: under the key ``semseg`` in an ONNX model's
``metadata_props``, and as the extra file ``semseg.json`` in a ``torch.export`` archive (``.pt2``).
"""

from __future__ import annotations

import json
from typing import Any

from torch import nn

from semseg.errors import ExportError

KEY = "semseg"  # ONNX metadata_props key
EXTRA_FILE = "semseg.json"  # torch.export.save extra file
AXES = ("batch", "height", "width")


def model_metadata(model: nn.Module, size: tuple[int, int], dynamic: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """JSON-ready metadata of ``model`` (a :class:`~semseg.models.SegmentationModel`) exported at
    ``size`` ``(H, W)`` with the ``dynamic`` axes (a subset of ``batch``, ``height``, ``width``)."""
    meta = model.metadata() if hasattr(model, "metadata") else {}
    return {
        "model_name": getattr(model, "model_name", None),
        "model_options": {k: v for k, v in getattr(model, "model_options", {}).items() if _jsonable(v)},
        "num_classes": getattr(model, "num_classes", None),
        "class_names": meta.get("class_names"),
        "palette": meta.get("palette"),
        "mean": meta.get("mean", list(getattr(model, "mean", ()))),
        "std": meta.get("std", list(getattr(model, "std", ()))),
        "size": list(size),
        "dynamic": list(dynamic),
        **extra,
    }


def parse_metadata(text: str | None, source: str) -> dict[str, Any]:
    """The metadata dict from its JSON text; :class:`~semseg.errors.ExportError` naming ``source``
    when it is missing or unreadable (a file not written by ``semseg export``)."""
    if not text:
        raise ExportError(f"{source} has no semseg metadata (class names, mean/std): export it with `semseg export`")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportError(f"{source}: unreadable semseg metadata ({exc.msg})") from None
    for key in ("num_classes", "mean", "std"):
        if key not in meta:
            raise ExportError(f"{source}: semseg metadata lacks {key!r}")
    return meta


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True

"""Trained models shipped inside the package, usable offline right after ``pip install``.

Each is a folder here, named for what it segments::

    camvid/
      model.safetensors   half-precision weights (safetensors: tensors only, nothing executes)
      meta.json           network, options, layout, classes, palette, mean/std, the recipe's config
      scores.json         what ``semseg eval`` measured for these very weights, and how

Load one with ``semseg.load_model("camvid")`` or ``semseg predict IMAGE --model camvid``; score
it on your own copy of the data with ``semseg eval camvid --data-root DIR``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from semseg.constants import SHIPPED_MODELS_DIR
from semseg.engine.checkpoint import load_weights, model_from_meta, read_meta
from semseg.errors import CheckpointError, UnknownModelError
from semseg.models import SegmentationModel

SHIPPED_ROOT = SHIPPED_MODELS_DIR

REINSTALL = (
    'reinstall semseg (pip install --force-reinstall --no-deps semseg, or pip install -e ".[dev]" in a checkout)'
)


def list_shipped() -> list[str]:
    """Names of the shipped models (folders with weights and metadata)."""
    return sorted(
        p.name for p in SHIPPED_ROOT.iterdir() if (p / "model.safetensors").is_file() and (p / "meta.json").is_file()
    )


def shipped_folder(name: str) -> Path:
    """The checkpoint folder of shipped model ``name``.

    Raises:
        UnknownModelError: no shipped model of that name (the message lists them).
    """
    if name not in list_shipped():
        raise UnknownModelError(f"no shipped model {name!r}; shipped: {', '.join(list_shipped()) or 'none'}")
    return SHIPPED_ROOT / name


def load_shipped(name: str) -> SegmentationModel:
    """Shipped model ``name`` in float32, eval mode, carrying its classes, palette and mean/std.

    Raises:
        UnknownModelError: no such shipped model.
        CheckpointError: its files are damaged (the message says to reinstall).
    """
    folder = shipped_folder(name)
    try:
        model = model_from_meta(read_meta(folder))
        load_weights(folder, model)  # float16 on disk; load_state_dict copies into float32
    except CheckpointError as exc:
        raise CheckpointError(f"the shipped model {name!r} is damaged ({exc}); {REINSTALL}") from None
    return model.float().eval()


def shipped_scores(name: str) -> dict[str, Any]:
    """The scores measured for shipped model ``name`` (its ``scores.json``)."""
    path = shipped_folder(name) / "scores.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"the shipped model {name!r} is damaged ({path}: {exc}); {REINSTALL}") from None

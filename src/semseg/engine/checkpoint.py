"""Checkpoints that cannot run code when loaded.

A checkpoint is a folder::

    model.safetensors   the weights (safetensors: pure tensors, no pickle)
    state.pt            optimizer state, iteration, RNG states (read with weights_only=True)
    meta.json           model name, options and memory layout; classes, palette, normalisation;
                        the resolved config (see :func:`checkpoint_meta`)

Each file is written under a temporary name and renamed, and the folder itself is written as
``NAME.tmp`` and renamed, so an interrupted save never leaves a half checkpoint behind.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from semseg.errors import CheckpointError
from semseg.models import SegmentationModel, create_model


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


def checkpoint_meta(model: nn.Module, channels_last: bool, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``meta.json`` holds: everything needed to rebuild ``model`` (name, options without
    the backbone weights, which the checkpoint replaces, and the memory layout, so a run trained
    NCHW is evaluated NCHW) plus its label semantics and normalisation, and the run's config."""
    inner: SegmentationModel = unwrap(model)  # type: ignore[assignment]
    options = {k: v for k, v in inner.model_options.items() if k != "backbone_weights"}
    return {
        "model_name": inner.model_name,
        "model_options": options,
        "num_classes": inner.num_classes,
        "channels_last": channels_last,
        **inner.metadata(),
        "config": config or {},
    }


def model_from_meta(meta: dict[str, Any]) -> SegmentationModel:
    """An untrained model built as ``meta`` (from :func:`checkpoint_meta`) says, carrying its
    metadata. Checkpoints written before the layout was saved get the model's default layout."""
    options = {k: v for k, v in meta.get("model_options", {}).items() if k not in ("backbone_weights", "channels_last")}
    layout = meta.get("channels_last", meta.get("model_options", {}).get("channels_last"))
    model = create_model(meta["model_name"], num_classes=meta["num_classes"], channels_last=layout, **options)
    model.set_metadata(meta["class_names"], meta["palette"], meta["mean"], meta["std"])
    return model


def load_checkpoint_model(path: str | Path) -> SegmentationModel:
    """The trained model of a run folder, checkpoint folder or ``model.safetensors`` file."""
    folder = find_checkpoint(path)
    model = model_from_meta(read_meta(folder))
    load_weights(folder, model)
    return model


def save_checkpoint(
    folder: str | Path, model: nn.Module, meta: dict[str, Any], state: dict[str, Any] | None = None
) -> Path:
    """Write ``model``'s weights, ``meta`` and the optional training ``state`` to ``folder``,
    replacing an older checkpoint there only once the new one is complete."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in unwrap(model).state_dict().items()}
    save_file(tensors, str(tmp / "model.safetensors"))
    if state is not None:
        torch.save(state, tmp / "state.pt")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old.exists():
        shutil.rmtree(old)
    return folder


def find_checkpoint(path: str | Path) -> Path:
    """Accept a run folder (uses ``checkpoints/last``), a checkpoint folder, or its model file."""
    path = Path(path)
    if path.is_file() and path.name == "model.safetensors":
        path = path.parent
    for candidate in (path, path / "checkpoints" / "last", path / "last"):
        if (candidate / "model.safetensors").is_file() and (candidate / "meta.json").is_file():
            return candidate
    raise CheckpointError(f"no checkpoint at {path} (expected a folder with model.safetensors and meta.json)")


def read_meta(folder: Path) -> dict[str, Any]:
    """The checkpoint's ``meta.json``."""
    try:
        return json.loads((folder / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {folder / 'meta.json'}: {exc}") from exc


def load_weights(folder: Path, model: nn.Module) -> None:
    """Load the checkpoint's weights into ``model``; every key must match."""
    try:
        tensors = load_file(str(folder / "model.safetensors"))
    except Exception as exc:
        raise CheckpointError(f"cannot read {folder / 'model.safetensors'}: {exc}") from exc
    result = unwrap(model).load_state_dict(tensors, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{folder}: weights do not fit the model (missing {result.missing_keys[:3]}, "
            f"unexpected {result.unexpected_keys[:3]})"
        )


def load_state(folder: Path) -> dict[str, Any]:
    """The training state (optimiser, iteration, clock, RNG) of a resumable checkpoint."""
    path = folder / "state.pt"
    if not path.is_file():
        raise CheckpointError(f"{folder} has no training state (state.pt); it cannot be resumed")
    return torch.load(path, map_location="cpu", weights_only=True)

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
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from semseg.engine.lock import LOCK_NAME, is_stale, read_lock
from semseg.errors import CheckpointError
from semseg.models import SegmentationModel, create_model, legacy_options


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
    try:
        options = {k: v for k, v in meta["model_options"].items() if k not in ("backbone_weights", "channels_last")}
        # A checkpoint from before the structures followed the released code names fewer options:
        # it rebuilds as the network it was trained as.
        options = legacy_options(meta["model_name"], options)
        layout = meta.get("channels_last", meta["model_options"].get("channels_last"))
        model = create_model(meta["model_name"], num_classes=meta["num_classes"], channels_last=layout, **options)
        model.set_metadata(meta["class_names"], meta["palette"], meta["mean"], meta["std"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"meta.json is not a semseg checkpoint's (missing or malformed {exc})") from None
    return model


def load_checkpoint_model(path: str | Path) -> SegmentationModel:
    """The trained model of a run folder, checkpoint folder or ``model.safetensors`` file."""
    folder = find_checkpoint(path)
    model = model_from_meta(read_meta(folder))
    load_weights(folder, model)
    return model


def init_from_checkpoint(model: nn.Module, source: str | Path) -> dict[str, list[str]]:
    """Fine-tuning: copy into ``model`` every tensor of a trained checkpoint whose name and shape
    match (a run folder, checkpoint folder or ``.safetensors`` file). Tensors whose shape differs
    (the classifier, for another class count) keep their fresh initialisation.

    Returns ``{"loaded": [...], "skipped": [...], "missing": [...]}``: loaded names, names whose
    shape differs, and the model's names the checkpoint lacks. Raises :class:`CheckpointError` if
    nothing matches (a checkpoint of another network).
    """
    path = Path(source)
    file = path if path.suffix == ".safetensors" and path.is_file() else find_checkpoint(path) / "model.safetensors"
    try:
        tensors = load_file(str(file))
    except Exception as exc:
        raise CheckpointError(f"train.init_from: cannot read {file}: {exc}") from None
    own = unwrap(model).state_dict()
    loaded = [k for k, v in tensors.items() if k in own and own[k].shape == v.shape]
    skipped = [k for k, v in tensors.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in tensors]
    if not loaded:
        raise CheckpointError(
            f"train.init_from: no tensor of {file} fits {getattr(unwrap(model), 'model_name', 'the model')}"
        )
    unwrap(model).load_state_dict({k: tensors[k] for k in loaded}, strict=False)
    return {"loaded": loaded, "skipped": skipped, "missing": missing}


def save_checkpoint(
    folder: str | Path,
    model: nn.Module,
    meta: dict[str, Any],
    state: dict[str, Any] | None = None,
    extra_weights: dict[str, dict[str, torch.Tensor]] | None = None,
) -> Path:
    """Write ``model``'s weights, ``meta`` and the optional training ``state`` to ``folder``,
    replacing an older checkpoint there only once the new one is complete. ``extra_weights``
    adds ``NAME.safetensors`` files (e.g. ``ema``: the averaged weights)."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        tensors = {k: v.detach().contiguous().cpu() for k, v in unwrap(model).state_dict().items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        for name, extra in (extra_weights or {}).items():
            save_file({k: v.detach().contiguous().cpu() for k, v in extra.items()}, str(tmp / f"{name}.safetensors"))
        if state is not None:
            torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))  # written last: marks tmp complete
        _readable_by_all(tmp)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = " (the previous checkpoint is intact)" if folder.exists() else ""
        raise CheckpointError(f"cannot write the checkpoint {folder}: {exc.strerror or exc}{kept}") from None
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old.exists():
        shutil.rmtree(old)
    return folder


def recover_checkpoint(folder: Path) -> None:
    """Finish a save that a crash interrupted between its renames.

    :func:`save_checkpoint` writes ``NAME.tmp`` completely (``meta.json`` last), then renames
    ``NAME`` to ``NAME.old`` and ``NAME.tmp`` to ``NAME``. If ``NAME`` is missing, the newest
    complete one of ``NAME.tmp`` and ``NAME.old`` becomes ``NAME`` again.
    """
    if folder.exists() or _being_written(folder):
        return
    for candidate in (folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")):
        if (candidate / "meta.json").is_file() and (candidate / "model.safetensors").is_file():
            os.replace(candidate, folder)
            return


def _being_written(folder: Path) -> bool:
    """Whether a live process holds the run folder of ``RUN/checkpoints/NAME`` (its save may be
    between the two renames right now: leave its files alone)."""
    holder = read_lock(folder.parent.parent / LOCK_NAME)
    return holder is not None and not is_stale(holder)


def _readable_by_all(folder: Path) -> None:
    # safetensors creates its file 0600; give every file the mode the user's umask gives new files.
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def find_checkpoint(path: str | Path) -> Path:
    """Accept a run folder (uses ``checkpoints/last``), a checkpoint folder, or its model file."""
    path = Path(path)
    if path.is_file() and path.name == "model.safetensors":
        path = path.parent
    for candidate in (path, path / "checkpoints" / "last", path / "last"):
        if candidate.name == "last":
            recover_checkpoint(candidate)
        if (candidate / "model.safetensors").is_file() and (candidate / "meta.json").is_file():
            return candidate
    raise CheckpointError(f"no checkpoint at {path} (expected a folder with model.safetensors and meta.json)")


def read_meta(folder: Path) -> dict[str, Any]:
    """The checkpoint's ``meta.json``."""
    try:
        return json.loads((folder / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {folder / 'meta.json'}: {exc}") from exc


def load_weights(folder: Path, model: nn.Module, name: str = "model") -> None:
    """Load the checkpoint's weights ``NAME.safetensors`` (``model``, or ``ema``: the averaged
    weights) into ``model``; every key must match."""
    file = folder / f"{name}.safetensors"
    if not file.is_file():
        raise CheckpointError(f"{folder} has no {file.name}")
    try:
        tensors = load_file(str(file))
    except Exception as exc:  # safetensors raises its own error types for a truncated or foreign file
        raise CheckpointError(f"cannot read {file}: {exc}") from None
    expected = unwrap(model).state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    wrong = [
        f"{k} {tuple(tensors[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{folder}: weights do not fit the model {getattr(unwrap(model), 'model_name', '')} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shapes {wrong[:3]})"
        )
    unwrap(model).load_state_dict(tensors)


def load_state(folder: Path) -> dict[str, Any]:
    """The training state (optimiser, iteration, clock, RNG) of a resumable checkpoint."""
    path = folder / "state.pt"
    if not path.is_file():
        raise CheckpointError(f"{folder} has no training state (state.pt); it cannot be resumed")
    try:
        # weights_only: a state.pt crafted to run code is refused, never executed.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, empty, or refused by the weights-only unpickler
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # torch colours parts of its message
        first = text.splitlines()[0] if text else type(exc).__name__
        raise CheckpointError(f"cannot read the training state {path}: {first[:160]}") from None
    if not isinstance(state, dict) or not {"optimizer", "iteration", "wall", "cpu"} <= set(state):
        raise CheckpointError(f"{path} is not a semseg training state (no optimizer, iteration and clock)")
    return state

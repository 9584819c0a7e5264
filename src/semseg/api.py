"""The high-level API for users who just want masks: :func:`load_model` and :func:`predict`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from semseg.data.folder import default_palette
from semseg.data.transforms import normalize_batch
from semseg.engine.checkpoint import find_checkpoint, load_weights, read_meta
from semseg.errors import DataError
from semseg.models.registry import create_model, list_models
from semseg.models.segmentor import IMAGENET_MEAN, IMAGENET_STD

ImageLike = np.ndarray | Tensor


def model_from_meta(meta: dict[str, Any]) -> nn.Module:
    """Rebuild an (untrained) model from a checkpoint's ``meta.json`` and attach its metadata."""
    options = dict(meta.get("model_options", {}))
    options.pop("backbone_weights", None)  # the checkpoint has the weights
    model = create_model(meta["model_name"], num_classes=meta["num_classes"], **options)
    attach_metadata(model, meta["class_names"], meta["palette"], meta["mean"], meta["std"])
    return model


def attach_metadata(
    model: nn.Module,
    class_names: Sequence[str],
    palette: Sequence[Sequence[int]],
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> nn.Module:
    model.class_names = list(class_names)  # type: ignore[assignment]
    model.palette = [tuple(int(v) for v in c) for c in palette]  # type: ignore[assignment]
    model.mean = tuple(mean)  # type: ignore[assignment]
    model.std = tuple(std)  # type: ignore[assignment]
    return model


def load_model(
    name_or_checkpoint: str | Path, num_classes: int | None = None, device: str = "cpu", **options: Any
) -> nn.Module:
    """A ready model in eval mode that carries ``class_names``, ``palette``, ``mean`` and ``std``.

    Args:
        name_or_checkpoint: a checkpoint (run folder, checkpoint folder or its
            ``model.safetensors``), or a registered model name (random head; backbone weights
            as ``options`` say, e.g. ``backbone_weights="imagenet"``).
        num_classes: for a model name only (default 21).
    """
    path = Path(name_or_checkpoint)
    if path.exists():
        folder = find_checkpoint(path)
        model = model_from_meta(read_meta(folder))
        load_weights(folder, model)
    elif str(name_or_checkpoint) in list_models():
        n = num_classes or 21
        model = create_model(str(name_or_checkpoint), num_classes=n, **options)
        attach_metadata(model, [f"class_{i}" for i in range(n)], default_palette(n))
    else:
        # create_model raises UnknownModelError with suggestions; a path that does not exist
        # is reported as such when it looks like one.
        if any(sep in str(name_or_checkpoint) for sep in ("/", "\\", ".safetensors")):
            raise DataError(f"checkpoint not found: {name_or_checkpoint}")
        create_model(str(name_or_checkpoint))
    return model.to(device).eval()


def _as_chw_uint8(image: ImageLike) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(image)) if isinstance(image, np.ndarray) else image
    if t.dtype != torch.uint8:
        raise DataError(f"predict expects uint8 images, got {t.dtype}")
    if t.dim() == 3 and t.shape[-1] == 3 and t.shape[0] != 3:
        t = t.permute(2, 0, 1)
    if t.dim() != 3 or t.shape[0] != 3:
        raise DataError(f"predict expects an HxWx3 array or 3xHxW tensor, got shape {tuple(t.shape)}")
    return t


@torch.no_grad()
def predict(model: nn.Module, image: ImageLike | list[ImageLike], **inference_options: Any) -> Tensor | list[Tensor]:
    """Label maps ``int64 (H, W)`` at each image's original size.

    Args:
        model: e.g. from :func:`load_model`; its ``mean``/``std`` normalise the input.
        image: uint8 ``HxWx3`` array or ``3xHxW`` tensor, or a list of them (sizes may differ).
        **inference_options: forwarded to :func:`semseg.engine.evaluate.predict_logits`
            (``mode``, ``crop``, ``stride``, ``scales``, ``flip``).
    """
    from semseg.engine.evaluate import predict_logits

    single = not isinstance(image, list)
    images = [image] if single else image
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for img in images:
        x = normalize_batch(_as_chw_uint8(img)[None].to(device), model.mean, model.std)
        out.append(predict_logits(model, x, **inference_options).argmax(1)[0].cpu())
    model.train(was_training)
    return out[0] if single else out

"""What a finished evaluation leaves in the run folder: ``metrics.json``, ``per_class.txt`` and
``overlay.png`` (image | ground truth | prediction for the first validation image)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from semseg.engine.files import save_png_atomic, write_atomic
from semseg.inference import Predictor, rgb_view
from semseg.metrics import format_table
from semseg.models import SegmentationModel
from semseg.viz import colorize, overlay, side_by_side


def write_eval_report(
    run_dir: Path,
    model: SegmentationModel,
    scores: dict[str, Any],
    val_set: Dataset,
    device: torch.device,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the scores (summary, per class, plus ``extra``) and the overlay panel of
    ``val_set[0]`` into ``run_dir``, each file atomically. ``model`` carries the class names and
    palette (:meth:`SegmentationModel.set_metadata`)."""
    names = model.class_names
    per_class = {
        name: {
            "iou": _clean(scores["iou"][i]),
            "accuracy": _clean(scores["accuracy"][i]),
            "f1": _clean(scores["f1"][i]),
        }
        for i, name in enumerate(names)
    }
    summary = {k: _clean(v) for k, v in scores.items() if not isinstance(v, list)}
    payload = {**summary, "per_class": per_class, **(extra or {})}
    write_atomic(run_dir / "metrics.json", json.dumps(payload, indent=2))
    write_atomic(run_dir / "per_class.txt", format_table(scores, names) + "\n")
    image, mask = val_set[0]
    save_png_atomic(Image.fromarray(prediction_panel(model, image, mask)), run_dir / "overlay.png")


def prediction_panel(model: SegmentationModel, image: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Image | ground truth | prediction (colours from the model's palette).

    Shape: image ``uint8 (B, H, W)``, mask ``(H, W)`` -> ``uint8 (H, 3 W + 8, 3)``.
    """
    was_training = model.training
    model.eval()
    pred = Predictor(model)(image).cpu()
    model.train(was_training)
    rgb = rgb_view(image).permute(1, 2, 0).numpy()  # multi-band: the first three bands (or the first as grey)
    palette = model.palette or []
    return side_by_side(rgb, colorize(mask, palette), overlay(rgb, pred, palette))


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v

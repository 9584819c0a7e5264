"""What a finished evaluation leaves in the run folder: ``metrics.json``, ``per_class.txt`` and
``overlay.png`` (image | ground truth | prediction for the first validation image)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from semseg.data.transforms import normalize_batch
from semseg.engine.checkpoint import unwrap
from semseg.metrics import format_table
from semseg.viz import colorize, overlay, side_by_side


def write_eval_report(
    run_dir: Path,
    model: nn.Module,
    scores: dict[str, Any],
    val_set: Any,
    device: torch.device,
    extra: dict[str, Any] | None = None,
) -> None:
    model = unwrap(model)
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
    _atomic_write(run_dir / "metrics.json", json.dumps(payload, indent=2))
    _atomic_write(run_dir / "per_class.txt", format_table(scores, names) + "\n")
    image, mask = val_set[0]
    with torch.no_grad():
        model.eval()
        logits = model(normalize_batch(image[None].to(device), model.mean, model.std))
    pred = logits.argmax(1)[0].cpu()
    rgb = image.permute(1, 2, 0).numpy()
    panel = side_by_side(rgb, colorize(mask, model.palette), overlay(rgb, pred, model.palette))
    tmp = run_dir / "overlay.tmp.png"
    Image.fromarray(panel).save(tmp)
    tmp.replace(run_dir / "overlay.png")


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)

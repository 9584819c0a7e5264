"""mmsegmentation 1.x checkpoints (``{"meta": {...}, "state_dict": {...}}``)."""

from __future__ import annotations

from typing import Any

from semseg.convert.spec import ModelSpec

SPECS: dict[str, ModelSpec] = {}


def detect(keys: set[str]) -> str | None:
    """The mmseg network of a state dict's keys, or ``None`` when they are not mmseg's."""
    if "decode_head.conv_seg.weight" not in keys:
        return None
    return None


def class_names(obj: Any) -> list[str] | None:
    """The class names an mmseg checkpoint stores in ``meta["dataset_meta"]["classes"]``."""
    meta = obj.get("meta") if isinstance(obj, dict) else None
    dataset_meta = meta.get("dataset_meta") if isinstance(meta, dict) else None
    names = dataset_meta.get("classes") if isinstance(dataset_meta, dict) else None
    if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        return list(names)
    return None

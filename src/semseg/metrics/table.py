"""A per-class score table for the console and for ``per_class.txt`` in run folders."""

from __future__ import annotations

import math
from collections.abc import Sequence


def format_table(scores: dict[str, object], class_names: Sequence[str] | None = None) -> str:
    """Columns: class, IoU, Acc, F1 (in %); a final row with the means."""
    iou = list(scores["iou"])  # type: ignore[call-overload]
    acc = list(scores["accuracy"])  # type: ignore[call-overload]
    f1 = list(scores["f1"])  # type: ignore[call-overload]
    names = list(class_names) if class_names else [str(i) for i in range(len(iou))]
    width = max(8, *(len(n) for n in names))

    def pct(v: float) -> str:
        return "   -  " if v is None or math.isnan(v) else f"{100 * v:6.2f}"

    lines = [f"{'class':<{width}}    IoU     Acc      F1", "-" * (width + 24)]
    for name, i, a, f in zip(names, iou, acc, f1, strict=True):
        lines.append(f"{name:<{width}} {pct(i)}  {pct(a)}  {pct(f)}")
    lines.append("-" * (width + 24))
    lines.append(
        f"{'mean':<{width}} {pct(scores['miou'])}  {pct(scores['mean_accuracy'])}  {pct(scores['mf1'])}"  # type: ignore[arg-type]
    )
    lines.append(f"pixel accuracy {pct(scores['pixel_accuracy'])}   fwIoU {pct(scores['fwiou'])}")  # type: ignore[arg-type]
    return "\n".join(lines)

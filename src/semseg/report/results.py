"""``semseg results``: the README's results table, generated from what runs measured.

Each row is one evaluation of one model, read from files, never typed in:

- a run folder's ``metrics.json`` (written when training finishes: single scale, with the
  iteration, training wall and CPU time and the machine), and every ``eval/*/metrics.json`` under
  it (``semseg eval RUN --out RUN/eval/NAME ...``: multi-scale, flip, CRF);
- a shipped model's ``scores.json`` (``semseg.pretrained``), by its name.

The table gives per-class IoU, mIoU and pixel accuracy, the inference recipe, the command that
reproduces the number, the training time and the machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semseg.errors import DataError


@dataclass
class ResultRow:
    """One evaluation: its scores, how it was made and where it came from."""

    model: str
    inference: str
    scores: dict[str, Any]
    command: str
    iterations: int | None
    wall_min: float | None
    cpu_min: float | None
    machine: str


def _inference_label(options: dict[str, Any] | None) -> str:
    if not options:
        return "single scale"
    scales = options.get("scales") or [1.0]
    parts = ["single scale" if list(scales) == [1.0] else f"scales {min(scales):g}-{max(scales):g}"]
    if options.get("flip"):
        parts.append("flip")
    if options.get("crf"):
        parts.append("CRF")
    if options.get("mode") == "slide":
        parts.append("sliding window")
    label = " + ".join(parts)
    precision = options.get("precision")
    return label if precision in (None, "fp32") else f"{label}, {precision}"


def _eval_command(target: str, options: dict[str, Any] | None) -> str:
    args = ["semseg", "eval", target]
    scales = (options or {}).get("scales") or [1.0]
    if list(scales) != [1.0]:
        args += ["--scales", ",".join(f"{s:g}" for s in scales)]
    if (options or {}).get("flip"):
        args.append("--flip")
    if (options or {}).get("crf"):
        args.append("--crf")
    if (options or {}).get("precision") not in (None, "fp32"):
        args += ["--precision", options["precision"]]
    return " ".join(args)


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def rows_for_run(run: Path) -> list[ResultRow]:
    """The rows of a run folder: its final ``metrics.json`` and each ``eval/*/metrics.json``."""
    final = run / "metrics.json"
    if not final.is_file():
        raise DataError(f"{run} has no metrics.json (a run writes it when training finishes)")
    metrics = _read(final)
    iterations = metrics.get("iteration")
    wall = metrics.get("train_wall_s")
    cpu = metrics.get("train_cpu_s")
    common = {
        "model": run.name,
        "iterations": iterations,
        "wall_min": None if wall is None else wall / 60,
        "cpu_min": None if cpu is None else cpu / 60,
        "machine": metrics.get("machine", "not recorded"),
    }
    rows = [ResultRow(inference="single scale", scores=metrics, command=f"semseg eval {run}", **common)]
    for extra in sorted((run / "eval").glob("*/metrics.json")):
        scores = _read(extra)
        options = scores.get("inference")
        rows.append(
            ResultRow(
                inference=_inference_label(options), scores=scores, command=_eval_command(str(run), options), **common
            )
        )
    return rows


def rows_for_shipped(name: str, scores: dict[str, Any]) -> list[ResultRow]:
    """The rows of a shipped model's ``scores.json``."""
    training = scores.get("training", {})
    rows = []
    for entry in scores.values():
        if isinstance(entry, dict) and "miou" in entry:
            rows.append(
                ResultRow(
                    model=f"{name} (shipped)",
                    inference=_inference_label(entry.get("inference")),
                    scores=entry,
                    command=entry.get("command", f"semseg eval {name}"),
                    iterations=training.get("iterations"),
                    wall_min=training.get("wall_min"),
                    cpu_min=training.get("cpu_min"),
                    machine=scores.get("machine", "not recorded"),
                )
            )
    return rows


def _pct(value: Any, decimals: int = 1) -> str:
    return "-" if value is None or value != value else f"{100 * float(value):.{decimals}f}"


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} min"


def _class_ious(scores: dict[str, Any], names: list[str]) -> list[Any]:
    """Per-class IoU in ``names`` order: an ``iou`` list (``semseg eval --out``, ``scores.json``)
    or a ``per_class`` mapping (a run's final ``metrics.json``)."""
    if "iou" in scores:
        return list(scores["iou"])
    per_class = scores.get("per_class") or {}
    return [per_class.get(name, {}).get("iou") for name in names]


def results_table(rows: list[ResultRow], class_names: list[str] | None = None) -> str:
    """A markdown table: one row per evaluation, per-class IoU columns when ``class_names`` given."""
    names = class_names or []
    head = ["model", "inference", "mIoU", "pixel acc.", *names, "iterations", "train wall", "train CPU", "command"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|"]
    for row in rows:
        iou = _class_ious(row.scores, names)
        cells = [
            row.model,
            row.inference,
            f"**{_pct(row.scores.get('miou'), 2)}**",  # two decimals: 69.97 must not read as 70.0
            _pct(row.scores.get("pixel_accuracy")),
            *(_pct(iou[i] if i < len(iou) else None) for i in range(len(names))),
            "-" if row.iterations is None else str(row.iterations),
            _minutes(row.wall_min),
            _minutes(row.cpu_min),
            f"`{row.command}`",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    machines = sorted({row.machine for row in rows})
    lines.append("")
    lines.append("Machine: " + "; ".join(machines) + ".")
    return "\n".join(lines)

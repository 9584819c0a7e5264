"""``make_report``: the plots of one or more run folders as PNG files and one HTML page."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import torch
from PIL import Image

from semseg.engine.files import save_png_atomic, write_atomic
from semseg.errors import ConfigError, DataError
from semseg.report.html import Plot, Section, render_page, table_html
from semseg.report.run_data import EvalResult, RunData, evaluate_checkpoint, load_run

# Names every report may write; per-run ones get a ``_RUN`` suffix when several runs are compared.
CURVE_FILES = ("loss.png", "lr.png", "miou.png", "per_class_iou.png")
EVAL_FILES = ("confusion", "worst_images")
PAGE = "report.html"


@dataclass
class ReportResult:
    """What :func:`make_report` wrote.

    Attributes:
        out: the report folder.
        page: the HTML page.
        files: every file written (PNGs and the page), in writing order.
        evaluations: the fresh evaluation of each run, by run name (empty with ``evaluate=False``).
    """

    out: Path
    page: Path
    files: list[Path] = field(default_factory=list)
    evaluations: dict[str, EvalResult] = field(default_factory=dict)


def default_out(runs: Sequence[Path]) -> Path:
    """``RUN/report`` for one run; ``PARENT/report-A-vs-B`` beside the first run for several."""
    if len(runs) == 1:
        return runs[0] / "report"
    return runs[0].parent / ("report-" + "-vs-".join(_slug(r.name) for r in runs))


def planned_files(names: Sequence[str], evaluate: bool) -> list[str]:
    """Every file name a report of runs ``names`` may write (some are skipped when there is
    nothing to draw, e.g. ``miou.png`` for runs that never evaluated)."""
    files = [PAGE, *CURVE_FILES]
    if evaluate:
        files += [f"{stem}.png" if len(names) == 1 else f"{stem}_{name}.png" for name in names for stem in EVAL_FILES]
    return files


def make_report(
    runs: Sequence[str | Path],
    out: str | Path | None = None,
    *,
    evaluate: bool = True,
    max_images: int | None = None,
    worst: int = 4,
    overwrite: bool = False,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> ReportResult:
    """Plot the logs of one or more runs, and (with ``evaluate``) their checkpoints' confusion
    matrices and worst val images, into PNG files and one self-contained ``report.html``.

    Args:
        runs: run folders of ``semseg train``; several make one page that compares them
            (curves overlaid, per-class IoU side by side, a confusion matrix and worst images each).
        out: the report folder; default :func:`default_out`.
        evaluate: load each checkpoint and evaluate it on the saved config's val split (needs
            the dataset); ``False``: plots from the logs only.
        max_images: evaluate at most this many val images (default: the run's ``data.max_val_images``).
        worst: how many lowest-mIoU images to show per run.
        overwrite: replace the files of an existing report in ``out``; without it, any of them
            existing raises :class:`~semseg.errors.DataError`.

    Raises:
        SemsegError: matplotlib missing (with the install command). DataError: a run folder
        without logs, an existing report, an unreadable val split. CheckpointError: no checkpoint
        when ``evaluate``. Each says what in one line.
    """
    from semseg.report import plots

    plots.require_matplotlib()
    if not runs:
        raise ConfigError("no run folder given")
    if worst < 0:
        raise ConfigError(f"--worst must be 0 or more, got {worst}")
    data = [load_run(r) for r in runs]
    _unique_names(data)
    out = Path(out) if out is not None else default_out([d.path for d in data])
    planned = planned_files([d.name for d in data], evaluate)
    existing = [out / f for f in planned if (out / f).exists()]
    if existing and not overwrite:
        raise DataError(f"{existing[0]} exists (a report is there); pass --overwrite to replace it, or --out DIR")

    evaluations: dict[str, EvalResult] = {}
    if evaluate:
        for run in data:
            evaluations[run.name] = evaluate_checkpoint(
                run.path, max_images=max_images, worst=worst, device=device, progress=progress
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot make the report folder {out}: {exc.strerror or exc}") from None

    result = ReportResult(out, out / PAGE, evaluations=evaluations)

    def save(name: str, fig: object | None, caption: str = "") -> Plot | None:
        if fig is None:
            return None
        png = plots.png_bytes(fig)  # type: ignore[arg-type]
        save_png_atomic(Image.open(io.BytesIO(png)), out / name)
        result.files.append(out / name)
        return Plot(name, (out / name).read_bytes(), caption)

    several = len(data) > 1
    sections = [
        Section("Training", _present(save("loss.png", plots.loss_figure(data)), save("lr.png", plots.lr_figure(data)))),
        Section(
            "Validation",
            _present(
                save("miou.png", plots.miou_figure(data), "mIoU at each evaluation during training (eval.jsonl)"),
                save("per_class_iou.png", plots.per_class_figure(_per_class(data, evaluations)), _per_class_note(data)),
            ),
        ),
    ]
    for run in data:
        ev = evaluations.get(run.name)
        if ev is None:
            continue
        suffix = f"_{run.name}" if several else ""
        what = f"{ev.images} val image{'s' * (ev.images != 1)}"
        section = Section(
            f"Evaluation of {run.name}" if several else "Evaluation of the last checkpoint",
            notes=[
                f"mIoU {100 * ev.scores['miou']:.2f}% and pixel accuracy {100 * ev.scores['pixel_accuracy']:.2f}% on {what}."
            ],
        )
        section.plots += _present(
            save(
                f"confusion{suffix}.png",
                plots.confusion_figure(ev.confusion, ev.class_names, f"Confusion matrix ({run.name}, {what})"),
                "rows: ground truth, normalised to 1; columns: prediction",
            ),
            save(
                f"worst_images{suffix}.png",
                plots.worst_figure(ev.worst, ev.class_names, ev.palette, f"Lowest per-image mIoU ({run.name})"),
                "image | ground truth | prediction, lowest per-image mIoU first",
            ),
        )
        sections.append(section)
    if overwrite:  # files of an earlier report that this one did not write would contradict the page
        for name in planned_files([d.name for d in data], evaluate=True):
            stale = out / name
            if name != PAGE and stale not in result.files and stale.exists():
                stale.unlink()
    title = "semseg report: " + " vs ".join(d.name for d in data)
    write_atomic(result.page, render_page(title, _summary_table(data, evaluations), sections))
    result.files.append(result.page)
    return result


def _present(*items: Plot | None) -> list[Plot]:
    return [p for p in items if p is not None]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"


def _unique_names(data: list[RunData]) -> None:
    """File-safe, distinct run names (``a``, ``a-2`` for two folders both named ``a``)."""
    seen: dict[str, int] = {}
    for run in data:
        base = _slug(run.name)
        seen[base] = seen.get(base, 0) + 1
        run.name = base if seen[base] == 1 else f"{base}-{seen[base]}"


def _per_class(data: Sequence[RunData], evaluations: dict[str, EvalResult]) -> dict[str, dict[str, float]]:
    """Per-class IoU of each run: its final evaluation (metrics.json), else the fresh one."""
    ious: dict[str, dict[str, float]] = {}
    for run in data:
        per_class = run.per_class_iou()
        if per_class is None and run.name in evaluations:
            ev = evaluations[run.name]
            per_class = dict(zip(ev.class_names, ev.scores["iou"], strict=True))
        if per_class:
            ious[run.name] = per_class
    return ious


def _per_class_note(data: Sequence[RunData]) -> str:
    if all(run.per_class_iou() is not None for run in data):
        return "the final evaluation's per-class IoU (metrics.json)"
    return "per-class IoU (metrics.json where the run finished, else this report's evaluation)"


def _summary_table(data: Sequence[RunData], evaluations: dict[str, EvalResult]) -> str:
    rows = []
    for run in data:
        last = run.log[-1]
        final = run.metrics or (run.evals[-1] if run.evals else {})
        ev = evaluations.get(run.name)
        rows.append(
            (
                run.name,
                run.model_name or "?",
                last.get("iteration", "?"),
                _pct(final.get("miou")),
                _pct(final.get("pixel_accuracy")),
                _pct(final.get("mean_accuracy")),
                f"{ev.images} img, {_pct(ev.scores['miou'])}" if ev else "-",
                _minutes(last.get("wall_s")),
                _minutes(last.get("cpu_s")),
            )
        )
    header = ("run", "model", "iterations", "mIoU", "pixel acc.", "mean acc.", "report eval mIoU", "wall", "CPU")
    folders = "".join(f"<li><code>{escape(str(run.path))}</code></li>" for run in data)
    return table_html(header, rows) + f'<p class="note">Run folders:</p><ul class="note">{folders}</ul>'


def _pct(v: object) -> str:
    return f"{100 * v:.2f}%" if isinstance(v, (int, float)) and not math.isnan(v) else "-"


def _minutes(v: object) -> str:
    return f"{v / 60:.1f} min" if isinstance(v, (int, float)) else "-"

"""The report's figures, drawn with matplotlib's object API (``matplotlib.figure.Figure``, which
renders with Agg: no display, no pyplot state, nothing global is changed).

Each ``*_figure`` function returns a ``Figure`` (or ``None`` when there is nothing to draw);
:func:`png_bytes` renders one to PNG. matplotlib is an optional dependency
(``pip install "semseg[report]"``): :func:`require_matplotlib` says so in one line.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from semseg.errors import SemsegError
from semseg.report.run_data import NOT_LOSS_TERMS, RunData, WorstImage
from semseg.viz import colorize

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSTALL_HINT = 'matplotlib is not installed; pip install "semseg[report]"'
DPI = 100


def require_matplotlib() -> None:
    """Raise a one-line :class:`~semseg.errors.SemsegError` naming the install command when
    matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise SemsegError(INSTALL_HINT) from None


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _curve_axes(title: str, ylabel: str) -> tuple[Figure, Any]:
    fig = _figure(8, 3.6)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pairs = [(r["iteration"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def loss_figure(runs: Sequence[RunData]) -> Figure | None:
    """Training loss over iterations: the total of each run (overlaid), and for a single run
    also each logged term (``main``, ``aux``, ``se``, per-loss terms) dashed, unless it equals
    the total."""
    fig, ax = _curve_axes("Training loss", "loss")
    drawn = False
    for run in runs:
        x, y = _series(run.log, "loss")
        if x:
            ax.plot(x, y, marker="." if len(x) < 30 else None, label=run.name if len(runs) > 1 else "loss")
            drawn = True
        if len(runs) == 1:
            terms = sorted({k for r in run.log for k, v in r.items() if k not in NOT_LOSS_TERMS and _number(v)})
            for key in terms:
                tx, ty = _series(run.log, key)
                if (tx, ty) != (x, y):  # a term equal to the total (a lone loss) is the same line
                    ax.plot(tx, ty, linestyle="--", linewidth=1, label=key)
    if not drawn:
        return None
    ax.legend(fontsize="small")
    return fig


def lr_figure(runs: Sequence[RunData]) -> Figure | None:
    """Learning rate over iterations, one line per run."""
    fig, ax = _curve_axes("Learning rate", "lr")
    drawn = False
    for run in runs:
        x, y = _series(run.log, "lr")
        if x:
            ax.plot(x, y, marker="." if len(x) < 30 else None, label=run.name)
            drawn = True
    if not drawn:
        return None
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    if len(runs) > 1:
        ax.legend(fontsize="small")
    return fig


def miou_figure(runs: Sequence[RunData]) -> Figure | None:
    """Validation mIoU (%) at each evaluation, one line per run; ``None`` if no run evaluated."""
    fig, ax = _curve_axes("Validation mIoU", "mIoU (%)")
    drawn = False
    for run in runs:
        x, y = _series(run.evals, "miou")
        if x:
            ax.plot(x, [100 * v for v in y], marker="o", label=run.name)
            drawn = True
    if not drawn:
        return None
    if len(runs) > 1:
        ax.legend(fontsize="small")
    return fig


def per_class_figure(ious: dict[str, dict[str, float]]) -> Figure | None:
    """Per-class IoU (%) bars, runs side by side within each class.

    Args:
        ious: ``{run name: {class name: IoU in 0..1 (NaN: class absent)}}``; classes in the
            order first met.
    """
    ious = {run: v for run, v in ious.items() if v}
    if not ious:
        return None
    classes: list[str] = []
    for per_class in ious.values():
        classes += [c for c in per_class if c not in classes]
    n_runs = len(ious)
    width = min(max(6.0, 0.28 * len(classes) * n_runs + 2), 40.0)
    fig = _figure(width, 4.2)
    ax = fig.add_subplot()
    bar = 0.8 / n_runs
    x = np.arange(len(classes))
    for k, (run, per_class) in enumerate(ious.items()):
        values = [100 * per_class.get(c, math.nan) for c in classes]
        ax.bar(x + (k - (n_runs - 1) / 2) * bar, np.nan_to_num(values, nan=0.0), bar, label=run)
    ax.set_xticks(x, classes, rotation=60, ha="right", fontsize="small")
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Per-class IoU (final evaluation)")
    ax.grid(True, axis="y", alpha=0.3)
    if n_runs > 1:
        ax.legend(fontsize="small")
    return fig


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str], title: str = "Confusion matrix") -> Figure:
    """Heatmap of the confusion matrix normalised by row (each ground-truth class sums to 1);
    rows of classes absent from the evaluated images are left blank. Values are written in the
    cells for up to 25 classes.

    Shape:
        confusion ``(C, C)`` counts, rows = ground truth, columns = prediction.
    """
    counts = np.asarray(confusion, dtype=np.float64)
    totals = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)
    c = len(class_names)
    side = min(max(5.0, 0.45 * c + 2.5), 30.0)
    fig = _figure(side + 1, side)
    ax = fig.add_subplot()
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the ground-truth class")
    ax.set_xticks(range(c), class_names, rotation=60, ha="right", fontsize="small")
    ax.set_yticks(range(c), class_names, fontsize="small")
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title(title)
    if c <= 25:
        for i in range(c):
            for j in range(c):
                if not math.isnan(norm[i, j]) and norm[i, j] >= 0.005:
                    ax.text(
                        j,
                        i,
                        f"{norm[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.6 else "black",
                    )
    return fig


def worst_figure(
    worst: Sequence[WorstImage], class_names: Sequence[str], palette: Sequence[tuple[int, int, int]], title: str = ""
) -> Figure | None:
    """One row per image: image | ground truth | prediction, titled with the per-image mIoU, and
    a legend of the classes that appear (ignored pixels are black)."""
    if not worst:
        return None
    h, w = worst[0].image.shape[:2]
    panel_w = 3.6
    fig = _figure(3 * panel_w, len(worst) * panel_w * h / w + 1.2)
    axes = fig.subplots(len(worst), 3, squeeze=False)
    present: set[int] = set()
    for row, item in zip(axes, worst, strict=True):
        for ax, panel, label in zip(
            row,
            (item.image, colorize(item.target, palette), colorize(item.prediction, palette)),
            (f"val image {item.index}", "ground truth", f"prediction (mIoU {100 * item.miou:.1f}%)"),
            strict=True,
        ):
            ax.imshow(panel, interpolation="nearest")
            ax.set_title(label, fontsize="small")
            ax.axis("off")
        present |= {int(v) for v in np.unique(item.target) if 0 <= v < len(class_names)}
        present |= {int(v) for v in np.unique(item.prediction) if 0 <= v < len(class_names)}
    from matplotlib.patches import Patch

    handles = [Patch(color=np.asarray(palette[i]) / 255, label=class_names[i]) for i in sorted(present)]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)

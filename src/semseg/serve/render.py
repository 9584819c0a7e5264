"""What the page shows: the overlay with some classes switched off, and the area-share table."""

from __future__ import annotations

import html
from collections.abc import Collection, Sequence

import numpy as np
import torch

from semseg.serve.shares import ClassShare
from semseg.viz import overlay


def render_overlay(
    image: np.ndarray,
    labels: torch.Tensor | np.ndarray,
    palette: Sequence[tuple[int, int, int]],
    visible: Collection[int],
    opacity: float,
) -> np.ndarray:
    """The class colours blended over ``image`` at ``opacity`` (0: the image, 1: the colours),
    only where the label is one of ``visible``; every other pixel is the image unchanged.

    Shapes: ``image`` ``(H, W, 3)`` uint8, ``labels`` ``(H, W)`` ids -> ``(H, W, 3)`` uint8.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    lab = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if lab.shape != image.shape[:2]:
        raise ValueError(f"labels {lab.shape} do not match the image {image.shape[:2]}")
    shown = np.isin(lab, np.fromiter((int(i) for i in visible), dtype=np.int64))
    if not shown.any() or opacity == 0.0:
        return image.copy()
    blended = overlay(image, lab, palette, alpha=opacity)
    return np.where(shown[:, :, None], blended, image)


def shares_table_html(shares: Sequence[ClassShare], palette: Sequence[tuple[int, int, int]]) -> str:
    """An HTML table ``class | % of pixels`` (with a colour swatch per class and a total row), for
    the page. Class names are escaped: they come from a checkpoint's metadata."""
    rows = []
    for s in shares:
        r, g, b = palette[s.class_id] if 0 <= s.class_id < len(palette) else (0, 0, 0)
        rows.append(
            f'<tr data-class-id="{s.class_id}">'
            f'<td><span class="swatch" style="background: rgb({r}, {g}, {b})"></span>{html.escape(s.name)}</td>'
            f'<td class="share">{s.percent:.2f}</td></tr>'
        )
    total = sum(s.percent for s in shares)
    return (
        '<table id="shares-table"><thead><tr><th>class</th><th>% of pixels</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody>"
        f'<tfoot><tr><td>total</td><td class="total">{total:.2f}</td></tr></tfoot></table>'
    )

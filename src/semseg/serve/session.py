"""The demo's work without the web page: one model, one uploaded file -> image, label map and
area shares. The Gradio page (:mod:`semseg.serve.app`) only calls these."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semseg.errors import InvalidOptionError
from semseg.inference import Predictor
from semseg.models import SegmentationModel
from semseg.serve.render import render_overlay, shares_table_html
from semseg.serve.shares import ClassShare, area_shares
from semseg.serve.upload import UploadLimits, read_upload


@dataclass
class Analysis:
    """One uploaded image and its prediction.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB, as uploaded (EXIF orientation applied).
        labels: ``(H, W)`` int64 class ids.
        shares: the classes present, largest area first; percentages add up to 100.
        seconds: time spent in the model.
    """

    image: np.ndarray
    labels: np.ndarray
    shares: list[ClassShare]
    seconds: float
    name: str = field(default="")


class DemoModel:
    """A model ready for the page: its :class:`~semseg.inference.Predictor`, class names,
    palette and the upload limits.

    Args:
        model: an RGB model with metadata (``semseg.api.load_model``).
        limits: the upload caps.
        **inference_options: the ``Predictor`` recipe (``mode``, ``crop``, ``scales``, ...).
    """

    def __init__(self, model: SegmentationModel, limits: UploadLimits | None = None, **inference_options: Any) -> None:
        bands = len(model.mean)
        if bands != 3:
            raise InvalidOptionError(
                f"the demo page takes RGB images, but this model expects {bands} input bands; use semseg predict"
            )
        self.model = model.eval()
        self.limits = limits or UploadLimits()
        self.predictor = Predictor(model, **inference_options)
        self.class_names = list(model.class_names or [f"class_{i}" for i in range(model.num_labels)])
        self.palette = [tuple(int(v) for v in c) for c in (model.palette or [])]

    def analyse(self, path: str | Path, name: str | None = None) -> Analysis:
        """Check and read the upload (:func:`~semseg.serve.upload.read_upload`: size before
        decoding, pixels from the header), predict, and count the area shares.

        Raises:
            DataError: the file is over a cap, empty, not an image or damaged (the message is
                for the page and names ``name``).
        """
        image = read_upload(path, self.limits, name)
        start = time.perf_counter()
        with torch.inference_mode():
            labels = self.predictor(image).cpu().numpy().astype(np.int64)
        seconds = time.perf_counter() - start
        return Analysis(
            image=image.permute(1, 2, 0).numpy(),
            labels=labels,
            shares=area_shares(labels, self.class_names),
            seconds=seconds,
            name=name or Path(path).name,
        )

    def overlay(self, analysis: Analysis, visible: list[int] | None, opacity: float) -> np.ndarray:
        """The overlay of ``analysis`` with only the ``visible`` class ids coloured (``None``:
        all) at ``opacity``; ``(H, W, 3)`` uint8."""
        ids = [s.class_id for s in analysis.shares] if visible is None else visible
        return render_overlay(analysis.image, analysis.labels, self.palette, ids, opacity)

    def shares_html(self, analysis: Analysis) -> str:
        """The area-share table of ``analysis`` as HTML."""
        return shares_table_html(analysis.shares, self.palette)

    def summary(self, analysis: Analysis) -> str:
        """One line for the page: the file, its size, the classes found and the model's time."""
        h, w = analysis.labels.shape
        n = len(analysis.shares)
        return f"{analysis.name}: {w} x {h} pixels, {n} class{'es' if n != 1 else ''} found in {analysis.seconds:.2f} s"

"""TensorBoard event files beside the JSON lines, with ``train.tensorboard: true`` (needs the
optional extra: ``pip install "semseg[tensorboard]"``). Written by rank 0 into ``RUN/tensorboard``;
view with ``tensorboard --logdir runs``.

What is logged: every logged step's losses and learning rate (``train/*``), every evaluation's
summary scores and per-class IoU (``val/*``, ``val_iou/<class>``), and the image | ground truth |
prediction panels of the first few validation images (``val_images/<i>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semseg.errors import ConfigError

PANELS = 3  # validation images shown at each evaluation


class TensorBoardLog:
    """A ``SummaryWriter`` on ``run_dir / "tensorboard"``, created only when asked for."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                'train.tensorboard needs the tensorboard package: pip install "semseg[tensorboard]"'
            ) from None
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def step(self, iteration: int, terms: dict[str, float]) -> None:
        """The losses and learning rate of a logged step."""
        for name, value in terms.items():
            self.writer.add_scalar(f"train/{name}", value, iteration)

    def evaluation(self, iteration: int, scores: dict[str, Any], class_names: list[str]) -> None:
        """Summary scores and per-class IoU (classes absent from the split are left out)."""
        for key, value in scores.items():
            if isinstance(value, float | int) and not isinstance(value, bool):
                self.writer.add_scalar(f"val/{key}", value, iteration)
        for name, iou in zip(class_names, scores.get("iou", []), strict=False):
            if iou == iou:  # NaN: the class is neither in the labels nor predicted
                self.writer.add_scalar(f"val_iou/{name}", iou, iteration)

    def panels(self, iteration: int, panels: list[np.ndarray]) -> None:
        """``(H, W, 3)`` uint8 image | ground truth | prediction panels."""
        for i, panel in enumerate(panels):
            self.writer.add_image(f"val_images/{i}", panel, iteration, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()

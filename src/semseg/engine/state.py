"""What a resumed run needs besides the weights and the optimiser: the training clock and the
random number generators, saved in ``state.pt`` and restored exactly."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class Clock:
    """Wall and process-CPU seconds spent training, carried across resumes. Evaluation and
    checkpointing call :meth:`lap` before and :meth:`start` after, so they are not counted."""

    wall: float = 0.0
    cpu: float = 0.0

    def start(self) -> None:
        self._w, self._c = time.perf_counter(), time.process_time()

    def lap(self) -> None:
        w, c = time.perf_counter(), time.process_time()
        self.wall += w - self._w
        self.cpu += c - self._c
        self._w, self._c = w, c


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (augmentations draw from all three)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The three generators' states as tensors and ints (loadable with ``weights_only=True``)."""
    return {
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
        "python_rng": torch.tensor(random.getstate()[1], dtype=torch.int64),
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put the generators back as :func:`rng_state` saved them."""
    torch.set_rng_state(state["torch_rng"])
    keys = state["numpy_rng"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, int(state["numpy_pos"]), 0, 0.0))
    random.setstate((3, tuple(int(v) for v in state["python_rng"].tolist()), None))

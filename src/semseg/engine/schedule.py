"""Learning-rate schedule as a pure function of the iteration (easy to resume and to test)."""

from __future__ import annotations


def poly_lr(iteration: int, total: int, base_lr: float, power: float = 0.9, warmup_iters: int = 0) -> float:
    """DeepLab's "poly" policy ``base_lr * (1 - it / total) ** power``, after an optional linear
    warm-up from ``base_lr / 10`` over ``warmup_iters``."""
    if warmup_iters and iteration < warmup_iters:
        return base_lr * (0.1 + 0.9 * iteration / warmup_iters)
    return base_lr * max(0.0, 1.0 - iteration / total) ** power

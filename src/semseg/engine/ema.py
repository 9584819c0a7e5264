"""An exponential moving average of the weights (``train.ema_decay``), the cheap ensemble that
often evaluates better than the last weights (Polyak and Juditsky, https://doi.org/10.1137/0330046;
as in timm's ``ModelEmaV2``). After every optimiser step:

``ema = d * ema + (1 - d) * weights``, for every floating tensor of the state dict (batch-norm
running statistics included); integer buffers (``num_batches_tracked``) are copied. With warm-up
(the default, as TensorFlow's ``ExponentialMovingAverage(num_updates=...)``), the ``n``-th update
uses ``d = min(decay, (1 + n) / (10 + n))``: without it, 0.999 still gives the random initial
weights 0.999^1000 = 37% of the average after 1,000 steps, which made the average of a short run
worse than its last weights (measured on CamVid: 17% against 80% pixel accuracy at step 200).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


class WeightEMA:
    """The averaged state of ``model``, on the model's device.

    Args:
        model: the bare model (not a DDP wrapper); its current weights start the average.
        decay: weight of the past, in (0, 1); 0.999 averages over roughly the last 1,000 steps.
        updates: updates already folded in (a resumed run's iteration), for the warm-up.
        warmup: use ``min(decay, (1 + n) / (10 + n))`` at the ``n``-th update.
    """

    def __init__(self, model: nn.Module, decay: float, updates: int = 0, warmup: bool = True) -> None:
        self.decay = decay
        self.updates = updates
        self.warmup = warmup
        self.state: dict[str, Tensor] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        """The decay the next update uses."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average."""
        decay = self.current_decay()
        for key, value in model.state_dict().items():
            average = self.state[key]
            if average.is_floating_point():
                average.mul_(decay).add_(value.detach(), alpha=1.0 - decay)
            else:
                average.copy_(value)
        self.updates += 1

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Within the block ``model`` holds the averaged weights; its own come back afterwards."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state)
        try:
            yield model
        finally:
            model.load_state_dict(own)

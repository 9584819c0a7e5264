"""An exponential moving average of the weights (``train.ema_decay``), the cheap ensemble that
often evaluates better than the last weights (Polyak and Juditsky, https://doi.org/10.1137/0330046;
as in timm's ``ModelEmaV2``). After every optimiser step:

``ema = decay * ema + (1 - decay) * weights``, for every floating tensor of the state dict
(batch-norm running statistics included); integer buffers (``num_batches_tracked``) are copied.
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
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.state: dict[str, Tensor] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average."""
        for key, value in model.state_dict().items():
            average = self.state[key]
            if average.is_floating_point():
                average.mul_(self.decay).add_(value.detach(), alpha=1.0 - self.decay)
            else:
                average.copy_(value)

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Within the block ``model`` holds the averaged weights; its own come back afterwards."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state)
        try:
            yield model
        finally:
            model.load_state_dict(own)

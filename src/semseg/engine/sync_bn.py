"""Batch norm over the whole distributed batch (``train.sync_bn``).

Under DDP each process normalises with the statistics of its own few images, which at the small
per-GPU batches of segmentation (2-4 crops) are noisy; synchronised BN (as in PSPNet and
DeepLab v3's training, https://arxiv.org/abs/1612.01105) computes the mean and variance over
every process's images. On CUDA, torch's ``nn.SyncBatchNorm`` does it; it does not run on CPU, so
CPU runs under torchrun (gloo) use :class:`DistributedBatchNorm2d` below, which sums the
per-channel moments with a differentiable ``all_reduce``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.nn.functional import all_reduce


class DistributedBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics cover every process's batch.

    Forward in training mode, with ``M`` the number of values per channel over all processes:
    ``mean = sum(x) / M`` and ``var = sum(x^2) / M - mean^2`` from one all-reduced vector
    ``[sum(x), sum(x^2), count]``; the output is ``(x - mean) / sqrt(var + eps) * weight + bias``.
    The running variance is updated with the unbiased ``var * M / (M - 1)``, as ``BatchNorm2d``
    does. The all-reduce's backward sums the gradients of every process's loss with respect to
    the shared statistics, so the gradient is that of one process on the combined batch. In
    eval mode, or in a single process, this is ``BatchNorm2d``.

    Shape: ``(N, C, H, W)`` -> ``(N, C, H, W)``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        xf = x.float()
        local = torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), xf.new_full((1,), x.numel() / c)])
        total = all_reduce(local, op=dist.ReduceOp.SUM)
        count = total[-1]
        mean = total[:c] / count
        var = (total[c : 2 * c] / count - mean * mean).clamp_min(0.0)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(count))
        y = (xf - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, count: float) -> None:
        assert self.running_mean is not None and self.running_var is not None
        self.num_batches_tracked += 1  # type: ignore[operator]
        momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        unbiased = var * (count / max(count - 1.0, 1.0))
        self.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
        self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> tuple[nn.Module, int]:
    """Replace every ``BatchNorm2d`` of ``model`` by its synchronised form (torch's
    ``SyncBatchNorm`` on CUDA, :class:`DistributedBatchNorm2d` elsewhere), keeping weights and
    running statistics. Returns the model and how many layers were replaced."""
    if device.type == "cuda":
        before = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        return nn.SyncBatchNorm.convert_sync_batchnorm(model), before
    return _replace(model)


def _replace(module: nn.Module) -> tuple[nn.Module, int]:
    if type(module) is nn.BatchNorm2d:
        sync = DistributedBatchNorm2d(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        state = module.state_dict()
        sync.load_state_dict(state)
        sync.train(module.training)
        return (sync.to(next(iter(state.values())).device) if state else sync), 1
    replaced = 0
    for name, child in module.named_children():
        new, n = _replace(child)
        if new is not child:
            setattr(module, name, new)
        replaced += n
    return module, replaced

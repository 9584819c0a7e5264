"""The optimiser and its learning rate: parameter groups built once, the rate set every step
from the pure schedule in :mod:`semseg.engine.schedule`."""

from __future__ import annotations

import torch
from torch import nn

from semseg.config import TrainConfig
from semseg.engine.schedule import poly_lr


def build_optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    """Backbone at ``lr``, heads at ``lr * head_lr_mult``; no weight decay on norms and biases
    (1-D parameters), as the DeepLab and mmsegmentation recipes do."""
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        mult = 1.0 if name.startswith("backbone.") else tc.head_lr_mult
        decay = 0.0 if p.ndim <= 1 else tc.weight_decay
        groups.setdefault((mult, decay), []).append(p)
    params = [{"params": ps, "lr_mult": m, "weight_decay": wd, "lr": tc.lr * m} for (m, wd), ps in groups.items()]
    if tc.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum)
    return torch.optim.AdamW(params, lr=tc.lr)


def set_learning_rate(optimizer: torch.optim.Optimizer, iteration: int, tc: TrainConfig, scale: float = 1.0) -> float:
    """Set every group's rate for ``iteration`` (poly decay after warm-up, times ``scale``, see
    :func:`lr_scale`); return the base rate."""
    lr = poly_lr(iteration, tc.iterations, tc.lr, tc.poly_power, tc.warmup_iters) * scale
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_mult"]
    return lr


def lr_scale(tc: TrainConfig, world: int) -> float:
    """The factor on ``train.lr``: 1, or with ``train.scale_lr: linear`` the number of images per
    step over ``data.batch_size`` (world size x accumulation), Goyal et al.'s linear scaling
    rule (https://arxiv.org/abs/1706.02677). Never applied unless asked."""
    return float(world * tc.accumulate) if tc.scale_lr == "linear" else 1.0

"""One training step: learning rate, ``train.accumulate`` micro-batches (forward under autocast,
loss, backward), optional gradient clipping, one optimiser update."""

from __future__ import annotations

import contextlib
import math

import torch

from semseg.data.transforms import normalize_batch
from semseg.engine.distill import distillation_loss
from semseg.engine.optim import set_learning_rate
from semseg.engine.run import Run
from semseg.errors import TrainingDivergedError
from semseg.precision import autocast


def train_step(run: Run, iteration: int) -> dict[str, float]:
    """Train on the next ``train.accumulate`` batches as step ``iteration`` (0-based) of ``run``.

    Each micro-batch's loss is divided by the number of micro-batches, so accumulating ``k``
    batches of ``B`` images gives the gradient of one batch of ``k * B`` (exactly so for a
    network without batch norm, whose statistics see ``B`` images at a time). Under DDP the
    gradients are all-reduced once, on the last micro-batch (``no_sync`` before it). A NaN or
    infinite loss stops the run before any weight changes.

    Returns the logged terms, averaged over the micro-batches: ``lr`` and the criterion's named
    losses (``main``, each aux name, ``loss``); with ``train.distill`` also ``distill`` (the
    unweighted distillation term, which ``loss`` includes with its weight).

    Shape: each micro-batch is uint8 images ``(B, 3, h, w)`` and masks ``(B, h, w)``.
    """
    tc = run.cfg.train
    lr = set_learning_rate(run.optimizer, iteration, tc, run.lr_scale)
    run.optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = {}
    for micro in range(tc.accumulate):
        raw, masks = next(run.batches)
        raw = raw.to(run.device, non_blocking=True)
        images = normalize_batch(raw, run.model.mean, run.model.std)
        masks = masks.to(run.device, non_blocking=True)
        last = micro == tc.accumulate - 1
        sync = contextlib.nullcontext() if last or run.world == 1 else run.net.no_sync()  # type: ignore[operator]
        with sync:
            with autocast(tc.precision, run.device):
                output = run.net(images, return_aux=True)
            loss, terms = run.criterion(output.logits, masks, output.aux)
            if run.teacher is not None:
                soft = run.teacher.probabilities(raw, tc.precision)
                distill = distillation_loss(output.logits, soft, masks, run.teacher.temperature)
                loss = loss + run.teacher.weight * distill
                terms = {**terms, "distill": float(distill.detach()), "loss": float(loss.detach())}
            if not math.isfinite(terms["loss"]):
                run.optimizer.zero_grad(set_to_none=True)
                kept = f"iteration {run.saved_iteration}" if run.saved_iteration is not None else "none yet"
                raise TrainingDivergedError(
                    f"the loss is {terms['loss']} at iteration {iteration + 1}; training stopped before updating "
                    f"the weights (last checkpoint kept: {kept}); lower train.lr or check the data"
                )
            run.scaler.scale(loss / tc.accumulate if tc.accumulate > 1 else loss).backward()
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + value / tc.accumulate
    if tc.clip_grad_norm is not None:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), tc.clip_grad_norm)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    if run.ema is not None:
        run.ema.update(run.model)
    return {"lr": lr, **totals}

"""One training step: learning rate, batch, forward under autocast, loss, backward, update."""

from __future__ import annotations

import math

from semseg.data.transforms import normalize_batch
from semseg.engine.optim import set_learning_rate
from semseg.engine.run import Run
from semseg.errors import TrainingDivergedError
from semseg.precision import autocast


def train_step(run: Run, iteration: int) -> dict[str, float]:
    """Train on the next batch as step ``iteration`` (0-based) of ``run``.

    Returns the logged terms: ``lr`` and the criterion's named losses (``main``, each aux name,
    ``loss``). The loss is computed in float32 outside autocast (the criterion casts the logits).

    Shape: a batch of uint8 images ``(N, 3, h, w)`` and masks ``(N, h, w)`` from ``run.batches``.
    """
    lr = set_learning_rate(run.optimizer, iteration, run.cfg.train)
    images, masks = next(run.batches)
    images = normalize_batch(images.to(run.device, non_blocking=True), run.model.mean, run.model.std)
    masks = masks.to(run.device, non_blocking=True)
    with autocast(run.cfg.train.precision, run.device):
        output = run.net(images, return_aux=True)
    loss, terms = run.criterion(output.logits, masks, output.aux)
    if not math.isfinite(terms["loss"]):
        kept = f"iteration {run.saved_iteration}" if run.saved_iteration is not None else "none yet"
        raise TrainingDivergedError(
            f"the loss is {terms['loss']} at iteration {iteration + 1}; training stopped before updating the "
            f"weights (last checkpoint kept: {kept}); lower train.lr or check the data"
        )
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return {"lr": lr, **terms}

"""Dataset-level evaluation: one confusion matrix over every labelled pixel of the split.

One loop serves every inference recipe: the prediction is a :class:`~semseg.inference.Predictor`
(whole image, sliding window, multi-scale + flip, with or without the dense CRF), so every recipe
gets distributed sharding and, on datasets with instance ids, Cityscapes' iIoU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm import tqdm

from semseg.constants import IGNORE_INDEX
from semseg.inference import Predictor
from semseg.metrics import ConfusionMatrix, InstanceIoU

PredictFn = Callable[[Tensor], Tensor]
"""uint8 image ``(3, H, W)`` -> label map ``int64 (H, W)``."""


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    device: torch.device,
    predictor: PredictFn | None = None,
    ignore_index: int = IGNORE_INDEX,
    rank: int = 0,
    world_size: int = 1,
    max_images: int | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], ConfusionMatrix]:
    """Evaluate on uint8 ``(image, mask)`` items at full size, one image at a time.

    Args:
        model: put in ``eval()`` for the loop and restored afterwards.
        dataset: items ``(uint8 (3, H, W), int64 (H, W))``; a ``load_instances(i)`` method
            (Cityscapes) adds the instance-weighted iIoU.
        predictor: the inference recipe; default :class:`~semseg.inference.Predictor` (whole image).
        rank, world_size: in a distributed run each process takes every ``world_size``-th image
            (no padding, so no image is counted twice) and the counts are summed with ``all_reduce``.
        max_images: evaluate only the first ``max_images`` items.

    Returns:
        ``(scores, confusion matrix)``; scores as :meth:`ConfusionMatrix.compute` (plus ``iiou``).
    """
    was_training = model.training
    model.eval()
    predict = predictor if predictor is not None else Predictor(model)
    cm = ConfusionMatrix(num_classes, ignore_index, device=device)
    load_instances = getattr(dataset, "load_instances", None)
    iiou = InstanceIoU.cityscapes(device) if load_instances is not None else None
    n = len(dataset) if max_images is None else min(max_images, len(dataset))  # type: ignore[arg-type]
    for i in tqdm(range(rank, n, world_size), desc="eval", disable=not progress, leave=False):
        image, mask = dataset[i]
        pred = predict(image).to(device)
        cm.update(pred, mask.to(device))
        if iiou is not None:
            iiou.update(pred, mask.to(device), load_instances(i).to(device))
    cm.all_reduce()
    results = cm.compute()
    if iiou is not None:
        iiou.all_reduce()
        results.update(iiou.compute(cm))
    model.train(was_training)
    return results, cm

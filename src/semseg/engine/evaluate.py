"""Dataset-level evaluation: one confusion matrix over every labelled pixel of the split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm import tqdm

from semseg.data.transforms import normalize_batch
from semseg.metrics import ConfusionMatrix, InstanceIoU


def predict_logits(
    model: nn.Module,
    images: Tensor,
    mode: str = "whole",
    crop: Sequence[int] | None = None,
    stride: Sequence[int] | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
) -> Tensor:
    """Scores ``(N, C, H, W)`` for normalised images ``(N, 3, H, W)``: the model's logits for
    plain whole-image inference, otherwise the averaged probabilities of
    :func:`semseg.inference.inference` (sliding window, multi-scale, flip)."""
    if mode == "whole" and tuple(scales) == (1.0,) and not flip:
        return model(images)
    from semseg.inference import inference

    return inference(model, images, mode=mode, crop=crop, stride=stride, scales=scales, flip=flip, output="probs")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    device: torch.device,
    ignore_index: int = 255,
    inference_options: dict[str, Any] | None = None,
    rank: int = 0,
    world_size: int = 1,
    max_images: int | None = None,
    progress: bool = True,
) -> tuple[dict[str, object], ConfusionMatrix]:
    """Evaluate on uint8 ``(image, mask)`` items at full size, one image at a time.

    In a distributed run each process takes every ``world_size``-th image (no padding, so no
    image is counted twice) and the counts are summed with ``all_reduce``.
    """
    was_training = model.training
    model.eval()
    cm = ConfusionMatrix(num_classes, ignore_index, device=device)
    # Datasets with instance ids (Cityscapes) also get the instance-weighted iIoU.
    iiou = InstanceIoU.cityscapes(device) if hasattr(dataset, "load_instances") else None
    n = len(dataset) if max_images is None else min(max_images, len(dataset))  # type: ignore[arg-type]
    indices = range(rank, n, world_size)
    mean, std = model_attr(model, "mean"), model_attr(model, "std")
    for i in tqdm(indices, desc="eval", disable=not progress, leave=False):
        image, mask = dataset[i]
        x = normalize_batch(image[None].to(device), mean, std)
        scores = predict_logits(model, x, **(inference_options or {}))
        pred = scores.argmax(1)[0]
        cm.update(pred, mask.to(device))
        if iiou is not None:
            iiou.update(pred, mask.to(device), dataset.load_instances(i).to(device))  # type: ignore[attr-defined]
    cm.all_reduce()
    results = cm.compute()
    if iiou is not None:
        iiou.all_reduce()
        results.update(iiou.compute(cm))
    model.train(was_training)
    return results, cm


def model_attr(model: nn.Module, name: str) -> Any:
    inner = model.module if hasattr(model, "module") else model
    return getattr(inner, name)

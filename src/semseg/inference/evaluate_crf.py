"""Network inference followed by the dense CRF, for ``semseg eval --crf`` and ``semseg predict --crf``.

The network's probabilities (any :func:`semseg.inference.inference` mode) are refined by
:func:`semseg.inference.dense_crf` with DeepLab's parameters unless ``crf_options`` says otherwise,
on the device the model is on.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm import tqdm

from semseg.data.transforms import normalize_batch
from semseg.inference.crf import dense_crf
from semseg.inference.modes import inference
from semseg.metrics import ConfusionMatrix

INFERENCE_KEYS = ("mode", "crop", "stride", "scales", "flip")


@torch.no_grad()
def crf_probs(
    model: nn.Module, image: Tensor, inference_options: dict[str, Any] | None = None, **crf_options: Any
) -> Tensor:
    """Refined probabilities ``(C, H, W)`` for one uint8 image ``(3, H, W)`` (model in eval mode)."""
    inner = model.module if hasattr(model, "module") else model
    device = next(model.parameters()).device
    opts = {k: v for k, v in (inference_options or {}).items() if k in INFERENCE_KEYS}
    x = normalize_batch(image[None].to(device), inner.mean, inner.std)
    probs = inference(model, x, output="probs", **opts)[0]
    return dense_crf(image.permute(1, 2, 0).to(device), probs, **crf_options)


def predict_with_crf(
    model: nn.Module, image: Tensor, inference_options: dict[str, Any] | None = None, **crf_options: Any
) -> Tensor:
    """Label map ``int64 (H, W)`` on the CPU for a uint8 image ``(3, H, W)``: network, then dense CRF."""
    was_training = model.training
    model.eval()
    try:
        return crf_probs(model, image, inference_options, **crf_options).argmax(0).cpu()
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_with_crf(
    model: nn.Module,
    dataset: Dataset,
    num_classes: int,
    device: torch.device,
    inference_options: dict[str, Any] | None = None,
    progress: bool = True,
    max_images: int | None = None,
    ignore_index: int = 255,
    **crf_options: Any,
) -> dict[str, object]:
    """Scores (as :func:`semseg.engine.evaluate.evaluate`) of network + dense CRF over a dataset of
    uint8 ``(image, mask)`` items at full size, one image at a time (single process)."""
    was_training = model.training
    model.eval()
    cm = ConfusionMatrix(num_classes, ignore_index, device=device)
    n = len(dataset) if max_images is None else min(max_images, len(dataset))  # type: ignore[arg-type]
    for i in tqdm(range(n), desc="eval+crf", disable=not progress, leave=False):
        image, mask = dataset[i]
        probs = crf_probs(model, image, inference_options, **crf_options)
        cm.update(probs.argmax(0), mask.to(device))
    model.train(was_training)
    return cm.compute()

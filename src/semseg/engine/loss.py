"""The training objective built from the config: class weights resolved from the dataset, and
main + auxiliary (+ SE) terms, each reported for logging."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from semseg.config import Config
from semseg.errors import ConfigError
from semseg.losses import class_statistics, cross_entropy, median_frequency_weights
from semseg.models.segmentor import SegmentationOutput


def resolve_class_weights(cfg: Config, train_set: Any, num_classes: int) -> Tensor | None:
    """``None``, an explicit list, or median-frequency weights counted on the training masks."""
    spec = cfg.train.class_weights
    if spec is None:
        return None
    if isinstance(spec, list):
        if len(spec) != num_classes:
            raise ConfigError(f"train.class_weights has {len(spec)} values for {num_classes} classes")
        return torch.tensor(spec, dtype=torch.float32)
    masks = (mask.long() for _, mask in getattr(train_set, "items", None) or _masks(train_set))
    class_pixels, image_pixels = class_statistics(masks, num_classes)
    return median_frequency_weights(class_pixels, image_pixels)


def _masks(train_set: Any):  # type: ignore[no-untyped-def]
    dataset = train_set.dataset
    for i in range(len(dataset)):
        yield None, dataset.load_pair(i)[1]


class Objective:
    """``(output, target) -> (loss, {"loss", "main", "aux", ...})``: cross-entropy on the main
    logits plus ``aux_weight`` times the cross-entropy of each dense auxiliary output."""

    def __init__(self, weight: Tensor | None, aux_weight: float, ignore_index: int = 255) -> None:
        self.weight = weight
        self.aux_weight = aux_weight
        self.ignore_index = ignore_index

    def __call__(self, output: SegmentationOutput | Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        logits, aux = (output.logits, output.aux) if isinstance(output, SegmentationOutput) else (output, {})
        main = cross_entropy(logits.float(), target, self.weight, self.ignore_index)
        total, terms = main, {"main": float(main.detach())}
        for name, value in aux.items():
            if value.dim() == 4:
                term = cross_entropy(value.float(), target, self.weight, self.ignore_index)
                total = total + self.aux_weight * term
                terms[name] = float(term.detach())
        terms["loss"] = float(total.detach())
        return total, terms


def build_criterion(cfg: Config, train_set: Any, num_classes: int, device: torch.device) -> Objective:
    weight = resolve_class_weights(cfg, train_set, num_classes)
    return Objective(None if weight is None else weight.to(device), cfg.train.aux_weight)

"""The training objective built from the config: class weights resolved from the dataset, then
:class:`~semseg.losses.criterion.SegmentationCriterion` (main + auxiliary + SE terms) with the
pixel loss of ``train.loss``."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Dataset

from semseg.config import Config
from semseg.constants import IGNORE_INDEX
from semseg.data.statistics import class_statistics, median_frequency_weights
from semseg.errors import ConfigError, InvalidOptionError
from semseg.losses.criterion import SegmentationCriterion


def resolve_class_weights(cfg: Config, train_set: Dataset, num_classes: int) -> Tensor | None:
    """``None``, an explicit list, or median-frequency weights counted on the training masks."""
    spec = cfg.train.class_weights
    if spec is None:
        return None
    if num_classes == 1:
        raise ConfigError(
            "train.class_weights is for multi-class models; a binary model weighs its foreground with "
            "train.loss [{name: bce, pos_weight: W}]"
        )
    if isinstance(spec, list):
        if len(spec) != num_classes:
            raise ConfigError(f"train.class_weights has {len(spec)} values for {num_classes} classes")
        return torch.tensor(spec, dtype=torch.float32)
    class_pixels, image_pixels = class_statistics(_train_masks(train_set), num_classes)
    return median_frequency_weights(class_pixels, image_pixels)


def _train_masks(train_set: Dataset) -> Iterator[Tensor]:
    """Masks ``int64 (H, W)`` of the training set, untransformed: from the cache when it has one."""
    items = getattr(train_set, "items", None)
    if items is not None:
        return (mask.long() for _, mask in items)
    return (train_set.load_pair(i)[1] for i in range(len(train_set)))  # type: ignore[attr-defined, arg-type]


def build_criterion(cfg: Config, train_set: Dataset, num_classes: int, device: torch.device) -> SegmentationCriterion:
    """Main + ``aux_weight`` x dense aux + ``se_weight`` x SE terms, the main and dense aux terms
    with the pixel loss of ``train.loss``; the configured class weights go to its terms that take
    them (ce, ohem, focal). An option value out of range (``thresh: 2``) raises ``ConfigError``."""
    weight = resolve_class_weights(cfg, train_set, num_classes)
    try:
        criterion = SegmentationCriterion(
            num_classes, IGNORE_INDEX, weight, cfg.train.aux_weight, cfg.train.se_weight, loss=cfg.train.loss
        )
    except InvalidOptionError as exc:
        raise ConfigError(f"train.loss: {exc}") from exc
    return criterion.to(device)

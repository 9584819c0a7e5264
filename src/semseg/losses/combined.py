"""A weighted sum of pixel losses, built from the config's ``train.loss`` list.

``train.loss: [{name: ce, weight: 1.0}, {name: lovasz, weight: 0.5}]`` gives
``loss = 1.0 * CE + 0.5 * Lovasz``; every other key of a term is an option of that loss
(``{name: ohem, thresh: 0.7, min_kept: 100000}``). ``config.LOSS_OPTIONS`` repeats the table below
for validation (the config layer may not import the losses); a test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from semseg.constants import IGNORE_INDEX
from semseg.errors import InvalidOptionError, allowed
from semseg.losses.functional import is_number
from semseg.losses.modules import (
    BCELoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    LovaszLoss,
    OhemCrossEntropyLoss,
    PixelLoss,
)

LOSSES: dict[str, type[PixelLoss]] = {
    "ce": CrossEntropyLoss,
    "ohem": OhemCrossEntropyLoss,
    "focal": FocalLoss,
    "dice": DiceLoss,
    "lovasz": LovaszLoss,
    "bce": BCELoss,
}
"""The loss of each ``train.loss`` name; each class's ``options`` lists the keys a term may set."""

DEFAULT_LOSS: tuple[dict[str, Any], ...] = ({"name": "ce", "weight": 1.0},)
"""Plain cross-entropy: the objective before ``train.loss`` existed."""

BINARY_DEFAULT_LOSS: tuple[dict[str, Any], ...] = ({"name": "bce", "weight": 1.0},)
"""Binary cross-entropy: the objective of a one-channel (binary) model when ``train.loss`` is the default."""

BINARY_LOSSES = tuple(name for name, cls in LOSSES.items() if cls.channels != "multi")
"""The losses a one-channel model can use: bce, dice, lovasz."""


def default_loss(num_classes: int | None) -> tuple[dict[str, Any], ...]:
    """:data:`BINARY_DEFAULT_LOSS` for a one-channel model, else :data:`DEFAULT_LOSS`."""
    return BINARY_DEFAULT_LOSS if num_classes == 1 else DEFAULT_LOSS


class CombinedLoss(nn.Module):
    """``sum_k weight_k * loss_k(logits, target)``, each term reported by name.

    Args:
        terms: ``(name, weight, loss module)`` triples; names must be unique, weights ``>= 0``.

    Shape: ``logits (N, C, H, W)``, ``target (N, H, W)`` int64 -> ``(scalar, {name: scalar})``,
    the unweighted value of each term.
    """

    def __init__(self, terms: Sequence[tuple[str, float, PixelLoss]]) -> None:
        super().__init__()
        if not terms:
            raise InvalidOptionError("a combined loss needs at least one term")
        names = [name for name, _, _ in terms]
        if len(set(names)) != len(names):
            raise InvalidOptionError(f"loss term names must be unique, got {names}")
        weights = [weight for _, weight, _ in terms]
        if not all(is_number(w) and w >= 0 for w in weights):
            raise InvalidOptionError(f"loss term weights must be numbers >= 0, got {weights}")
        self.names = names
        self.weights = [float(w) for w in weights]
        self.losses = nn.ModuleList(loss for _, _, loss in terms)

    def forward(self, logits: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        parts: dict[str, Tensor] = {}
        total: Tensor | None = None
        for name, weight, loss in zip(self.names, self.weights, self.losses, strict=True):
            value = loss(logits, target)
            parts[name] = value
            total = weight * value if total is None else total + weight * value
        assert total is not None
        return total, parts


def build_pixel_loss(
    spec: Sequence[Mapping[str, Any]] = DEFAULT_LOSS,
    class_weights: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    num_classes: int | None = None,
) -> CombinedLoss:
    """The :class:`CombinedLoss` of a ``train.loss`` list.

    Each term is a mapping with ``name`` (a key of :data:`LOSSES`), an optional ``weight``
    (number ``>= 0``, default 1) and that loss's options. ``class_weights`` ``(C,)`` go to the
    losses that take them (ce, ohem, focal). A name used twice is reported as ``name``,
    ``name_2``, ...

    ``num_classes`` (the model's output channels; ``None``: unchecked): with 1 (a binary, sigmoid
    model) only bce, dice and lovasz are allowed; bce needs exactly 1.

    Raises :class:`InvalidOptionError` naming the term (``loss term 1 (lovasz): ...``) for an
    unknown name or option, or an option value out of range.
    """
    terms: list[tuple[str, float, PixelLoss]] = []
    seen: dict[str, int] = {}
    for i, term in enumerate(spec):
        if not isinstance(term, Mapping):
            raise InvalidOptionError(f"loss term {i}: {term!r} is not a mapping like {{name: ce, weight: 1.0}}")
        name = term.get("name")
        if not isinstance(name, str) or name not in LOSSES:
            raise InvalidOptionError(f"loss term {i}: unknown loss {name!r}; allowed: {allowed(LOSSES)}")
        cls = LOSSES[name]
        if num_classes == 1 and cls.channels == "multi":
            raise InvalidOptionError(
                f"loss term {i} ({name}): a one-channel (binary) model needs a sigmoid loss; "
                f"use {allowed(BINARY_LOSSES)}"
            )
        if num_classes is not None and num_classes > 1 and cls.channels == "binary":
            raise InvalidOptionError(
                f"loss term {i} ({name}): for one-channel (binary) models only; this model has {num_classes} classes"
            )
        options = {k: v for k, v in term.items() if k not in ("name", "weight")}
        unknown = sorted(str(k) for k in set(options) - set(cls.options))
        if unknown:
            raise InvalidOptionError(
                f"loss term {i} ({name}): unknown option {', '.join(unknown)}; allowed: name, weight, {allowed(cls.options)}"
            )
        weight = term.get("weight", 1.0)
        if not is_number(weight) or weight < 0:
            raise InvalidOptionError(f"loss term {i} ({name}): weight={weight!r}; expected a number >= 0")
        if cls.takes_class_weights:
            options["weight"] = class_weights
        try:
            loss = cls(ignore_index=ignore_index, **options)
        except InvalidOptionError as exc:
            raise InvalidOptionError(f"loss term {i} ({name}): {exc}") from exc
        seen[name] = seen.get(name, 0) + 1
        terms.append((name if seen[name] == 1 else f"{name}_{seen[name]}", weight, loss))
    return CombinedLoss(terms)

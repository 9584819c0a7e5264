"""How one foreign network maps onto a semseg model, and the strict load that proves it.

A :class:`ModelSpec` names the semseg model and its options, renames the source's keys with an
ordered list of regular expressions (the first that matches wins), and may rearrange tensors
where the two implementations order the same weights differently (e.g. the channels of a
concatenation). :func:`map_state_dict` then checks the result against the semseg model key by
key and shape by shape, and raises one line naming the first mismatching keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from semseg.errors import CheckpointError
from semseg.models import SegmentationModel, create_model

Rule = tuple[str, str | Callable[[re.Match[str]], str]]
"""``(pattern, replacement)`` for :func:`re.fullmatch` on one key: a template for
:meth:`re.Match.expand`, or a function of the match (for renumbering, e.g. ``block3`` -> ``2``)."""

Fix = Callable[[dict[str, Tensor]], dict[str, Tensor]]
"""A tensor-level rearrangement applied after renaming (keys are semseg's)."""


@dataclass(frozen=True)
class ModelSpec:
    """One source network.

    Attributes:
        model: the semseg model name; ``options``: its :func:`~semseg.models.create_model` options.
        rules: key renames, source -> semseg, tried in order.
        classifier: the source key of the main classifier's weight (its first dim is the class count).
        aux_prefix: source keys starting with this belong to the auxiliary head; when the
            checkpoint has them the model is built with ``aux_loss=True``.
        fixes: tensor rearrangements after renaming.
        mean, std: the source's input normalisation on the 0-1 scale (RGB order).
        summary: one line for ``--help`` and error messages.
    """

    model: str
    options: Mapping[str, Any]
    rules: Sequence[Rule]
    classifier: str
    aux_prefix: str | None = None
    fixes: Sequence[Fix] = ()
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    summary: str = ""
    drop: Sequence[str] = field(default_factory=tuple)
    """Regular expressions of source keys that carry no weights semseg uses (dropped)."""


def rename(key: str, rules: Sequence[Rule]) -> str:
    """``key`` after the first rule whose pattern matches all of it (unchanged if none does)."""
    for pattern, replacement in rules:
        match = re.fullmatch(pattern, key)
        if match:
            return match.expand(replacement) if isinstance(replacement, str) else replacement(match)
    return key


def num_classes_of(tensors: Mapping[str, Tensor], spec: ModelSpec, name: str) -> int:
    """The class count of the checkpoint, read from its classifier."""
    if spec.classifier not in tensors:
        raise CheckpointError(
            f"{name}: no classifier {spec.classifier!r} (first keys: {', '.join(list(tensors)[:3])}); "
            "a checkpoint of another network or format?"
        )
    return int(tensors[spec.classifier].shape[0])


def build_target(spec: ModelSpec, tensors: Mapping[str, Tensor], num_classes: int) -> SegmentationModel:
    """The semseg model ``spec`` names, with the aux head when the checkpoint has one."""
    options = dict(spec.options)
    if spec.aux_prefix is not None:
        options["aux_loss"] = any(k.startswith(spec.aux_prefix) for k in tensors)
    # NCHW: the layout of the source; the converted checkpoint records it for eval and predict.
    return create_model(spec.model, num_classes=num_classes, channels_last=False, **options)


def map_state_dict(
    tensors: Mapping[str, Tensor], spec: ModelSpec, model: SegmentationModel, name: str
) -> dict[str, Tensor]:
    """``tensors`` renamed and rearranged into ``model``'s state dict, checked strictly.

    Raises :class:`~semseg.errors.CheckpointError` naming the first missing, unexpected and
    wrongly shaped keys (source names for the unexpected ones) when anything does not fit.
    """
    dropped = [re.compile(p) for p in spec.drop]
    source_of: dict[str, str] = {}
    mapped: dict[str, Tensor] = {}
    for key, value in tensors.items():
        if any(p.fullmatch(key) for p in dropped):
            continue
        new = rename(key, spec.rules)
        if new in mapped:
            raise CheckpointError(f"{name}: {source_of[new]} and {key} both map to {new}")
        source_of[new], mapped[new] = key, value
    for fix in spec.fixes:
        mapped = fix(mapped)
    expected = model.state_dict()
    missing = [k for k in expected if k not in mapped]
    unexpected = [source_of.get(k, k) for k in mapped if k not in expected]
    wrong = [
        f"{source_of.get(k, k)} {tuple(mapped[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in mapped and mapped[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = [
            f"{label} {len(items)} ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})"
            for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong))
            if items
        ]
        raise CheckpointError(f"{name} does not fit {spec.model} ({spec.summary}): {'; '.join(parts)}")
    return {k: mapped[k].to(expected[k].dtype) for k in expected}

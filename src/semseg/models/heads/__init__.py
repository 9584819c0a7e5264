"""Heads: built from ``in_channels``, ``in_strides``, ``num_classes`` and named knobs;
``forward(features) -> logits`` at the head's own stride. Heads own no loss."""

from __future__ import annotations

from collections.abc import Sequence

from semseg.errors import InvalidOptionError


def index_of_stride(in_strides: Sequence[int], stride: int, head: str) -> int:
    """Index of the first feature at ``stride``; a clear error if the backbone has none."""
    for i, s in enumerate(in_strides):
        if s == stride:
            return i
    raise InvalidOptionError(
        f"{head} needs a backbone feature at stride {stride}; this backbone gives strides "
        f"{', '.join(map(str, in_strides))}"
    )

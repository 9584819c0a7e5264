"""Heads: built from ``in_channels``, ``in_strides``, ``num_classes`` and named knobs;
``forward(features)`` returns the logits at the head's own stride, or a :class:`HeadOutput` when
the head has more to give the model. Heads own no loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from torch import Tensor

from semseg.errors import InvalidOptionError


class HeadOutput(NamedTuple):
    """What a head returns when it has outputs beside its logits.

    :class:`~semseg.models.segmentor.SegmentationModel` resizes ``logits`` to the input and, with
    ``return_aux=True``, returns ``extras`` under their names in ``SegmentationOutput.aux``: dense
    ``(N, C, h, w)`` maps resized to the input, anything else (EncNet's SE logits) as it is.

    Attributes:
        logits: ``(N, num_classes, h, w)`` at the head's stride.
        extras: named extra outputs, e.g. ``{"se": (N, num_classes)}``; names must differ from
            the model's aux heads.
    """

    logits: Tensor
    extras: dict[str, Tensor]


def index_of_stride(in_strides: Sequence[int], stride: int, head: str) -> int:
    """Index of the first feature at ``stride``; a clear error if the backbone has none."""
    for i, s in enumerate(in_strides):
        if s == stride:
            return i
    raise InvalidOptionError(
        f"{head} needs a backbone feature at stride {stride}; this backbone gives strides "
        f"{', '.join(map(str, in_strides))}"
    )


def check_input_feature(in_strides: Sequence[int], head: str) -> None:
    """Refuse a backbone that does not return the input image as its first feature (stride 1),
    which heads that read the image or its size rely on (built with ``with_input=True``)."""
    if not in_strides or in_strides[0] != 1:
        raise InvalidOptionError(
            f"{head} reads the input image: the backbone must return it as its first feature at stride 1 "
            f"(build it with with_input=True); this backbone gives strides {', '.join(map(str, in_strides))}"
        )

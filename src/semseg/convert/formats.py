"""The formats ``semseg weights convert --from`` accepts, each a table of source networks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from semseg.convert import torchvision
from semseg.convert.spec import ModelSpec


@dataclass(frozen=True)
class Format:
    """One checkpoint format.

    Attributes:
        specs: source network name -> :class:`~semseg.convert.spec.ModelSpec`.
        detect: the source network of a state dict's keys and shapes (``None``: not this format's).
        class_names: the class names a loaded checkpoint carries in its own metadata, if any.
    """

    name: str
    specs: Mapping[str, ModelSpec]
    detect: Callable[[Mapping[str, tuple[int, ...]]], str | None]
    class_names: Callable[[Any], list[str] | None] = lambda _obj: None


def _registry() -> dict[str, Format]:
    from semseg.convert import encoding, hrnet, hszhao, kazuto, mmseg

    return {
        "torchvision": Format("torchvision", torchvision.SPECS, torchvision.detect),
        "mmseg": Format("mmseg", mmseg.SPECS, mmseg.detect, mmseg.class_names),
        "hrnet": Format("hrnet", hrnet.SPECS, hrnet.detect),
        "hszhao": Format("hszhao", hszhao.SPECS, hszhao.detect),
        "kazuto": Format("kazuto", kazuto.SPECS, kazuto.detect),
        "encoding": Format("encoding", encoding.SPECS, encoding.detect),
    }


FORMATS: dict[str, Format] = _registry()

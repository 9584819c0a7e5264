"""Model registry: ``create_model(name, ...)`` and ``list_models(pattern)``.

Each named model is a short keyword-only builder function decorated with
:func:`register_model`; the name is what users type (``{arch}_{backbone}``).
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from semseg.errors import InvalidOptionError, UnknownModelError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name."""
    name = fn.__name__
    if name in _REGISTRY:
        raise RuntimeError(f"model {name!r} registered twice")
    _REGISTRY[name] = fn
    return fn


def _ensure_zoo_loaded() -> None:
    # Importing the zoo runs every @register_model; done lazily so the registry module
    # has no import cycle with the builders.
    import semseg.models.zoo  # noqa: F401


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted registered model names, optionally filtered by an fnmatch pattern (``"deeplab*"``)."""
    _ensure_zoo_loaded()
    names = sorted(_REGISTRY)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def create_model(name: str, num_classes: int = 21, **options: Any) -> nn.Module:
    """Build a registered model with random (or backbone-pretrained) weights.

    Args:
        name: a name from :func:`list_models`.
        num_classes: number of output channels of the classifier.
        **options: the builder's named options (``output_stride``, ``aux_loss``, ...). Unknown
            options raise :class:`~semseg.errors.InvalidOptionError` naming the accepted ones.
    """
    _ensure_zoo_loaded()
    if name not in _REGISTRY:
        close = fnmatch.filter(_REGISTRY, f"*{name.split('_')[0]}*")[:8]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise UnknownModelError(f"unknown model {name!r}{hint} (see `semseg list-models` for all {len(_REGISTRY)})")
    builder = _REGISTRY[name]
    params = inspect.signature(builder).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not accepts_any:
        unknown = sorted(set(options) - set(params))
        if unknown:
            known = sorted(p for p in params if p != "num_classes")
            raise InvalidOptionError(f"model {name!r} has no option {', '.join(unknown)}; allowed: {', '.join(known)}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise InvalidOptionError(f"num_classes must be a positive integer, got {num_classes!r}")
    model = builder(num_classes=num_classes, **options)
    model.model_name = name  # type: ignore[assignment]
    model.model_options = dict(options)  # type: ignore[assignment]
    return model

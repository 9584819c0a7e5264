"""Model registry: ``create_model(name, ...)`` and ``list_models(pattern)``.

Each named model is a short keyword-only builder function decorated with
:func:`register_model`; the name is what users type (``{arch}_{backbone}``).
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from typing import Any

import torch

from semseg.errors import InvalidOptionError, UnknownModelError
from semseg.models.input_conv import set_input_channels
from semseg.models.segmentor import SegmentationModel

Builder = Callable[..., SegmentationModel]

_REGISTRY: dict[str, Builder] = {}

# Structure options whose default changed on 2026-11-30 (issue 12: defaults now follow the authors'
# released code), by model-name pattern, with the value that rebuilds the network semseg built
# before. create_model records these options' values in ``model_options`` (so a checkpoint's
# meta.json states them and later default changes cannot alter it); a meta.json written before
# lacks them, and :func:`legacy_options` fills in the old values.
PRE_2026_11_30_STRUCTURE: dict[str, dict[str, Any]] = {
    "pspnet_resnet*": {"stem_width": 32, "dilate_first_block": False, "align_corners": False},
    "encnet_resnet*": {"stem_width": 32, "residual": False, "align_corners": False},
    "deeplabv1_vgg16": {"pool5a": False},
    "deeplabv2_resnet*": {"style": "pytorch", "dilate_first_block": False, "stem_pool_ceil": False},
    "deeplabv3_resnet*": {"head_form": "torchvision"},
    "deeplabv3plus_resnet*": {"depthwise_relu": False},
    "deeplabv3plus_mobilenetv2": {"depthwise_relu": False, "final_conv": True},
    "fcn16s_vgg16": {"learn_upsampling": True},
    "fcn8s_vgg16": {"learn_upsampling": True},
    "hrnetv2_w*": {"head_bias": False},
    "unet": {"dropout_levels": 1, "upconv_relu": False},
    "efficientfcn_resnet*": {"deep_stem": False, "avg_down": False, "align_corners": False},
    "fpn_resnet*": {"dropout": 0.1},
}


def _changed_structure(name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pattern, old in PRE_2026_11_30_STRUCTURE.items():
        if fnmatch.fnmatchcase(name, pattern):
            out.update(old)
    return out


def legacy_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` of a checkpoint's ``meta.json`` completed with the structure semseg built before
    2026-11-30 for every changed option they do not state.

    Checkpoints written since state all those options (``create_model`` records them), so this
    leaves them unchanged; older ones rebuild the network they were trained as. For
    ``model_from_meta`` only: a fresh :func:`create_model` call gets the current defaults.
    """
    return {**_changed_structure(name), **options}


# Models whose default memory layout is NCHW (see ``create_model``'s ``channels_last``).
_NCHW_BY_DEFAULT: set[str] = set()


def register_model(fn: Builder) -> Builder:
    """Register a builder (keyword-only options, returning a :class:`SegmentationModel`) under its
    function name."""
    name = fn.__name__
    if name in _REGISTRY:
        raise RuntimeError(f"model {name!r} registered twice")
    _REGISTRY[name] = fn
    return fn


def register_variants(family: Builder, variants: dict[str, tuple[Any, str]], channels_last: bool = True) -> None:
    """Register one builder per variant of a model family.

    ``family(variant, *, num_classes, ...)`` builds any member; each entry ``name: (variant, doc)``
    registers ``name`` as that family with its first argument bound. The registered builder
    shows the family's keyword options as its own signature, so :func:`create_model` checks
    options against them, and ``doc`` as its docstring. ``channels_last=False`` makes NCHW the
    family's default layout (for networks measured slower in NHWC).
    """
    signature = inspect.signature(family)
    _, *options = signature.parameters.values()
    for name, (variant, doc) in variants.items():
        builder = _bind_variant(family, variant)
        builder.__name__ = builder.__qualname__ = name
        builder.__doc__ = doc
        builder.__module__ = family.__module__
        builder.__signature__ = signature.replace(parameters=options)  # type: ignore[attr-defined]
        register_model(builder)
        if not channels_last:
            _NCHW_BY_DEFAULT.add(name)


def _bind_variant(family: Builder, variant: Any) -> Builder:
    def builder(**options: Any) -> SegmentationModel:
        return family(variant, **options)

    return builder


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


def default_channels_last(name: str) -> bool:
    """Whether :func:`create_model` builds ``name`` channels-last unless told otherwise."""
    _ensure_zoo_loaded()
    return name not in _NCHW_BY_DEFAULT


def create_model(
    name: str, num_classes: int = 21, *, channels_last: bool | None = None, in_channels: int = 3, **options: Any
) -> SegmentationModel:
    """Build a registered model with random (or backbone-pretrained) weights.

    Args:
        name: a name from :func:`list_models`.
        num_classes: number of output channels of the classifier.
        channels_last: store the conv weights in NHWC order. A conv whose weight is NHWC returns
            NHWC, so the whole network then runs channels-last whatever the input layout; oneDNN's
            NHWC kernels make most networks faster on CPU (``docs/bench_context.md``). Outputs
            are then NHWC-strided too (same shapes and values); call ``.contiguous()`` before
            ``.view``. ``None`` (default): NHWC, except for PSPNet and EncNet, which stay NCHW
            (the figures are in ``semseg.models.zoo.common``).
        in_channels: bands of the input image (``model.in_channels``). Builders with their own
            ``in_channels`` option (``unet``, ``naive_convnet``) get it; for every other model the
            first convolution (the one reading the 3 RGB channels) is replaced after the backbone
            weights are loaded, its pretrained filters adapted by
            :func:`~semseg.models.input_conv.adapt_input_conv`: the mean of the RGB filters repeated
            ``in_channels`` times and rescaled by ``3 / in_channels`` (for 1 band: their sum). The
            model's default mean/std then become the RGB averages repeated.
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
    if channels_last is not None and not isinstance(channels_last, bool):
        raise InvalidOptionError(f"channels_last must be true, false or null, got {channels_last!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise InvalidOptionError(f"in_channels must be a positive integer, got {in_channels!r}")
    own_bands = "in_channels" in params or accepts_any
    if own_bands and in_channels != 3:
        options = {**options, "in_channels": in_channels}
    model = builder(num_classes=num_classes, **options)
    if not isinstance(model, SegmentationModel):  # a wiring bug in the zoo, not a user error
        raise TypeError(f"builder of {name!r} returned a {type(model).__name__}, not a SegmentationModel")
    if in_channels != 3 and not own_bands:
        set_input_channels(model, in_channels)
        options = {**options, "in_channels": in_channels}
    if len(model.mean) != in_channels:  # a builder taking in_channels but keeping RGB defaults
        model.mean = (sum(model.mean) / len(model.mean),) * in_channels
        model.std = (sum(model.std) / len(model.std),) * in_channels
    if channels_last is None:
        channels_last = default_channels_last(name)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    # The values of the options whose defaults changed are recorded even when left at their
    # default, so that the checkpoint's meta.json rebuilds this very network (see legacy_options).
    defaults = {k: params[k].default for k in _changed_structure(name) if k in params}
    model.set_build_info(name, {**defaults, **options})
    return model

"""Foreign checkpoint file -> semseg model with the source's weights -> semseg checkpoint folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semseg.convert.formats import FORMATS, Format
from semseg.convert.read import read_checkpoint_file, state_dict_of
from semseg.convert.spec import ModelSpec, build_target, map_state_dict, num_classes_of
from semseg.engine.checkpoint import checkpoint_meta, save_checkpoint
from semseg.errors import CheckpointError, InvalidOptionError, allowed
from semseg.models import SegmentationModel


@dataclass
class Converted:
    """A converted network.

    Attributes:
        model: the semseg model holding the source's weights (eval mode, NCHW).
        format, source_model: where the weights came from (``"torchvision"``, ``"fcn_resnet50"``).
        spec: the mapping used.
        class_names: the names the checkpoint itself carries (mmseg's ``dataset_meta``), else ``None``.
    """

    model: SegmentationModel
    format: str
    source_model: str
    spec: ModelSpec
    class_names: list[str] | None


def get_format(name: str) -> Format:
    """The :class:`~semseg.convert.formats.Format` called ``name``."""
    if name not in FORMATS:
        raise InvalidOptionError(f"unknown checkpoint format {name!r}; allowed: {allowed(FORMATS)}")
    return FORMATS[name]


def _source_model(fmt: Format, keys: dict[str, tuple[int, ...]], model: str | None, name: str) -> str:
    """The source network: ``model`` when given (checked), else recognised from the keys."""
    if model is not None:
        if model not in fmt.specs:
            raise InvalidOptionError(f"unknown {fmt.name} model {model!r}; allowed: {allowed(fmt.specs)}")
        return model
    found = fmt.detect(keys)
    if found is not None:
        return found
    for other in FORMATS.values():
        guess = other.detect(keys) if other is not fmt else None
        if guess is not None:
            raise CheckpointError(
                f"{name} is not a {fmt.name} checkpoint; it looks like {other.name}'s {guess} (--from {other.name})"
            )
    raise CheckpointError(
        f"{name}: cannot tell which {fmt.name} network this is (first keys: {', '.join(sorted(keys)[:3])}); "
        f"pass --model ({allowed(fmt.specs)})"
    )


def convert_file(
    path: str | Path, from_format: str, model: str | None = None, num_classes: int | None = None
) -> Converted:
    """Read ``path`` safely, map it onto the semseg model of ``from_format``'s ``model``
    (recognised from the keys when ``None``) and load it strictly. ``num_classes``: the class
    count the checkpoint must have (default: whatever its classifier has).

    Raises :class:`~semseg.errors.CheckpointError` (missing or extra keys, wrong shapes, another
    format, a pickle that would run code) or :class:`~semseg.errors.InvalidOptionError` (unknown
    format or model), each with one line naming the culprit.
    """
    fmt = get_format(from_format)
    name = Path(path).name
    obj = read_checkpoint_file(path)
    tensors = state_dict_of(obj, path)
    source = _source_model(fmt, {k: tuple(v.shape) for k, v in tensors.items()}, model, name)
    spec = fmt.specs[source]
    found = num_classes_of(tensors, spec, name)
    if num_classes is not None and found != num_classes:
        raise CheckpointError(
            f"{name} has {found} classes ({spec.classifier} {tuple(tensors[spec.classifier].shape)}), "
            f"not the {num_classes} asked for"
        )
    target = build_target(spec, tensors, found)
    target.load_state_dict(map_state_dict(tensors, spec, target, name))
    target.set_metadata(mean=spec.mean, std=spec.std)
    return Converted(target.eval(), fmt.name, source, spec, fmt.class_names(obj))


def save_converted(
    converted: Converted, out: str | Path, source_file: str | Path, config: dict[str, Any], overwrite: bool = False
) -> Path:
    """Write ``converted`` as a semseg checkpoint folder (``model.safetensors`` + ``meta.json``,
    the layout ``semseg eval``/``predict`` and :func:`semseg.load_model` read), atomically; an
    existing ``out`` is replaced only with ``overwrite``."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise CheckpointError(f"{out} exists; pass --overwrite (overwrite=True) to replace it")
    if out.exists() and not (out / "meta.json").is_file():
        raise CheckpointError(f"{out} exists and is not a semseg checkpoint; choose another --out")
    meta = checkpoint_meta(converted.model, channels_last=False, config=config)
    meta["converted_from"] = {
        "format": converted.format,
        "model": converted.source_model,
        "file": Path(source_file).name,
        "mapping": converted.spec.summary,
    }
    return save_checkpoint(out, converted.model, meta)

"""Run configuration: typed dataclasses, complete YAML presets (no inheritance), and dotted
``--set key=value`` overrides. Unknown keys and values of the wrong type raise ``ConfigError``.

The resolved config is saved in every run folder and checkpoint, so a run can be reproduced
and a checkpoint knows how it was made.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from semseg.constants import PRECISIONS
from semseg.errors import ConfigError, allowed


@dataclass
class ModelConfig:
    name: str = "deeplabv3plus_mobilenetv2"
    num_classes: int | None = None  # None: taken from the dataset (1 with data.binary); 1: a binary (sigmoid) model
    in_channels: int = 3  # input bands (3: RGB; N: multi-band .npy images); see semseg.models.create_model
    options: dict[str, Any] = field(default_factory=lambda: {"backbone_weights": "imagenet"})  # create_model kwargs
    channels_last: bool | None = None  # NHWC layout; None: the model's default (see create_model); saved with the run


@dataclass
class DataConfig:
    dataset: str = "sample"  # sample | camvid | voc | ade20k | cityscapes | folder
    root: str | None = None  # None: the embedded sample
    train_split: str = "train"
    val_split: str = "val"
    classes: list[str] | None = None  # folder datasets only
    binary: bool = False  # foreground/background masks (0; 1 or 255; 128 ignored), a one-channel sigmoid model
    mean: list[float] | None = None  # per-band normalisation mean (0-1 scale); None: the model's (ImageNet for RGB)
    std: list[float] | None = None  # per-band normalisation std; None: the model's
    crop_size: list[int] = field(default_factory=lambda: [160, 160])  # H, W
    scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    flip: bool = True
    jitter: float = 0.0
    batch_size: int = 8
    workers: int = 0  # DataLoader worker processes; 0 loads in the training process
    cache: bool = True  # keep decoded images in memory (fast epochs on small datasets)
    max_val_images: int | None = None
    max_image_pixels: int | None = 178_956_970  # refuse larger images before decoding (None: no cap)


@dataclass
class TrainConfig:
    iterations: int = 150
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    head_lr_mult: float = 1.0
    weight_decay: float = 1e-4
    momentum: float = 0.9
    poly_power: float = 0.9
    warmup_iters: int = 0
    class_weights: str | list[float] | None = None  # None | median_frequency | [w0, w1, ...]
    aux_weight: float = 0.4
    se_weight: float = 0.2
    # Pixel loss of the main and dense aux outputs: weighted terms {name, weight, options...} (docs/losses.md)
    loss: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "ce", "weight": 1.0}])
    precision: str = "auto"  # semseg.precision: auto (bf16 where the hardware has it, else fp32) | fp32 | bf16 | fp16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0  # 0: only at the end
    checkpoint_every: int = 50
    threads: int | None = None  # torch intra-op threads; None: torch's default
    init_from: str | None = None  # fine-tune from a trained run, checkpoint or .safetensors (new classes allowed)
    accumulate: int = 1  # micro-batches of data.batch_size per optimiser step (gradient accumulation)
    sync_bn: bool | str = "auto"  # auto (synchronised BN under torchrun with 2+ processes) | true | false
    clip_grad_norm: float | None = None  # clip the gradients' global L2 norm; None: no clipping
    ema_decay: float | None = None  # keep an EMA of the weights (e.g. 0.999), evaluated and saved beside them
    scale_lr: str = "none"  # none | linear (lr x world size x accumulate, the "linear scaling rule")
    deterministic: bool = False  # deterministic algorithms (CUDA: slower kernels); CPU runs already repeat
    tensorboard: bool = False  # also write TensorBoard event files (the semseg[tensorboard] extra)
    # Distil a frozen teacher's (multi-scale + flip) soft targets: {teacher, weight, temperature, scales, flip}
    distill: dict[str, Any] | None = None


@dataclass
class EvalConfig:
    mode: str = "whole"  # whole | slide
    crop: list[int] | None = None
    stride: list[int] | None = None
    scales: list[float] = field(default_factory=lambda: [1.0])
    flip: bool = False
    crf: bool = False
    # fp32 by default: scores are reported at full precision (bf16 logits can flip a pixel's argmax).
    precision: str = "fp32"


@dataclass
class OutputConfig:
    dir: str = "runs"
    name: str | None = None  # None: {model}_{dataset}_{timestamp}


@dataclass
class Config:
    """The whole run. The defaults are the embedded sample job: DeepLabv3+ MobileNetV2 on 32
    downscaled CamVid frames for 150 iterations (about a minute on a laptop CPU)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CHOICES: dict[str, tuple[str, ...]] = {
    "train.optimizer": ("adamw", "sgd"),
    "train.precision": PRECISIONS,
    "train.scale_lr": ("none", "linear"),
    "eval.precision": PRECISIONS,
    "eval.mode": ("whole", "slide"),
}

# The smallest value of each numeric key (None stays allowed where the type allows it).
MINIMUMS: dict[str, float] = {
    "model.in_channels": 1,
    "data.batch_size": 1,
    "data.workers": 0,
    "data.max_val_images": 1,
    "data.max_image_pixels": 1,
    "train.iterations": 1,
    "train.lr": 0.0,
    "train.head_lr_mult": 0.0,
    "train.weight_decay": 0.0,
    "train.momentum": 0.0,
    "train.poly_power": 0.0,
    "train.warmup_iters": 0,
    "train.aux_weight": 0.0,
    "train.se_weight": 0.0,
    "train.log_every": 1,
    "train.eval_every": 0,
    "train.checkpoint_every": 1,
    "train.threads": 1,
    "train.accumulate": 1,
    "train.clip_grad_norm": 0.0,
    "train.ema_decay": 0.0,
}

# What `semseg train --resume RUN --set KEY=VALUE` may change: schedule lengths, intervals, where
# the data lives and how it is read. Anything else would make the resumed run another run.
SAFE_ON_RESUME = (
    "train.iterations",
    "train.log_every",
    "train.eval_every",
    "train.checkpoint_every",
    "train.threads",
    "train.device",
    "data.root",
    "data.workers",
    "data.max_val_images",
)

# Keys that moved, so an old preset or run gets a pointer instead of a bare "unknown key".
MOVED_KEYS = {"train.channels_last": "model.channels_last", "model.options.channels_last": "model.channels_last"}


def from_dict(data: dict[str, Any]) -> Config:
    """Build a Config from nested dicts, rejecting unknown keys and wrong types."""
    cfg = Config()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        article = "an" if kind[0] in "aeiou" else "a"
        raise ConfigError(
            f"a config is a mapping of sections ({allowed(_fields(Config))}), not {article} {kind} ({str(data)[:40]!r})"
        )
    _refuse_moved_keys(data)
    for section, values in (data or {}).items():
        if section not in _fields(Config):
            raise ConfigError(f"unknown config section {section!r}; allowed: {allowed(_fields(Config))}")
        if not isinstance(values, dict):
            raise ConfigError(f"config section {section!r} must be a mapping")
        for key, value in values.items():
            set_value(cfg, f"{section}.{key}", value)
    validate(cfg)
    return cfg


def load_config(path: str | Path) -> Config:
    """Read a YAML preset (a complete config; missing keys take the defaults above)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"config {path} is a folder; expected a YAML file")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (YAML) file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    if not text.strip():
        raise ConfigError(f"config file {path} is empty")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML: {first}") from None
    except (ValueError, TypeError, OverflowError) as exc:  # a value YAML parses but cannot build, e.g. 2020-99-99
        raise ConfigError(f"{path}: invalid value: {exc}") from None
    try:
        return from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``section.key=value`` strings; values are parsed as YAML (``[1, 2]``, ``null``, ``1e-3``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            value = raw  # not YAML (or a tagged value that cannot be built): keep the text; the type check answers
        key = key.strip()
        if key in MOVED_KEYS:
            raise ConfigError(f"config key {key!r} is now {MOVED_KEYS[key]!r}")
        if key.startswith("model.options."):
            cfg.model.options[key.split(".", 2)[2]] = value
            continue
        if key.startswith("train.distill."):  # one key of the mapping, e.g. train.distill.teacher=camvid
            cfg.train.distill = {**(cfg.train.distill or {}), key.split(".", 2)[2]: value}
            continue
        set_value(cfg, key, value)
    validate(cfg)
    return cfg


def apply_resume_overrides(cfg: Config, overrides: Sequence[str]) -> Config:
    """``--set`` on ``--resume``: only the keys of :data:`SAFE_ON_RESUME` may change."""
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key not in SAFE_ON_RESUME:
            raise ConfigError(
                f"--set {key} cannot change on --resume (the run would become another run); "
                f"allowed: {allowed(SAFE_ON_RESUME)}"
            )
    return apply_overrides(cfg, list(overrides))


def saved_config(data: dict[str, Any]) -> Config:
    """The config a run folder or checkpoint saved, brought up to date: runs made before
    ``train.channels_last`` became ``model.channels_last`` are read with the key moved."""
    data = {section: dict(values) if isinstance(values, dict) else values for section, values in data.items()}
    train, model = data.get("train"), data.setdefault("model", {})
    if isinstance(train, dict) and "channels_last" in train and isinstance(model, dict):
        layout = train.pop("channels_last")
        model.setdefault("channels_last", layout)
    return from_dict(data)


RECIPES_ROOT = Path(__file__).resolve().parent / "configs"
"""The recipes installed with the package: ``configs/<dataset>/<model>_<backbone>_os<N>_crop<S>.yaml``."""


def list_recipes() -> dict[str, Path]:
    """The installed recipes by name (``"camvid/deeplabv3plus_mobilenetv2_os16_crop288"``)."""
    return {p.relative_to(RECIPES_ROOT).with_suffix("").as_posix(): p for p in sorted(RECIPES_ROOT.rglob("*.yaml"))}


def resolve_config_path(name: str) -> Path:
    """A path; else an installed recipe by its name or a unique prefix of it
    (``camvid/deeplabv3plus_mobilenetv2``); else a preset name in ``./configs/``."""
    path = Path(name)
    if path.exists():  # a file, or a device such as /dev/null: load_config says what is wrong with it
        return path
    recipes = list_recipes()
    stem = name.removesuffix(".yaml")
    if stem in recipes:
        return recipes[stem]
    matches = [key for key in recipes if key.startswith(stem)]
    if len(matches) == 1:
        return recipes[matches[0]]
    if len(matches) > 1:
        raise ConfigError(f"config {name!r} is ambiguous; it starts: {', '.join(matches)}")
    candidate = Path("configs") / f"{stem}.yaml"
    if candidate.is_file():
        return candidate
    local = sorted(p.stem for p in Path("configs").glob("*.yaml")) if Path("configs").is_dir() else []
    known = [*recipes, *(f"configs/{n}" for n in local)]
    raise ConfigError(f"config {name!r} not found; installed recipes: {', '.join(known) or 'none'} (or a YAML path)")


def _refuse_moved_keys(data: dict[str, Any]) -> None:
    for moved, new in MOVED_KEYS.items():
        section, *rest = moved.split(".")
        values: Any = data.get(section)
        for part in rest[:-1]:
            values = values.get(part) if isinstance(values, dict) else None
        if isinstance(values, dict) and rest[-1] in values:
            raise ConfigError(f"config key {moved!r} is now {new!r}")


def set_value(cfg: Config, key: str, value: Any) -> None:
    """Set ``section.key`` to ``value``, checked against the field's type annotation."""
    parts = key.split(".")
    if len(parts) != 2:
        raise ConfigError(f"config key {key!r} must be section.key, e.g. data.root")
    section, name = parts
    if section not in _fields(Config):
        raise ConfigError(f"unknown config section {section!r}; allowed: {allowed(_fields(Config))}")
    obj = getattr(cfg, section)
    if name not in _fields(type(obj)):
        raise ConfigError(f"unknown config key {key!r}; allowed in {section}: {allowed(_fields(type(obj)))}")
    expected = typing.get_type_hints(type(obj))[name]
    setattr(obj, name, _coerce(key, value, expected))


def validate(cfg: Config) -> None:
    for key, choices in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in choices:
            raise ConfigError(f"{key}={value!r}; allowed: {allowed(choices)}")
    if len(cfg.data.crop_size) != 2 or min(cfg.data.crop_size) < 1:
        raise ConfigError(f"data.crop_size={cfg.data.crop_size}; expected [H, W] of positive integers")
    if len(cfg.data.scale_range) != 2 or not 0 < cfg.data.scale_range[0] <= cfg.data.scale_range[1]:
        raise ConfigError(f"data.scale_range={cfg.data.scale_range}; expected [low, high] with 0 < low <= high")
    for key, low in MINIMUMS.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is not None and not (value >= low and math.isfinite(value)):  # NaN fails both
            raise ConfigError(f"{key}={value}; it must be a number >= {low}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", cfg.train.device):
        raise ConfigError(f"train.device={cfg.train.device!r}; allowed: auto, cpu, cuda, cuda:N")
    if any(not (s > 0 and math.isfinite(s)) for s in cfg.eval.scales) or not cfg.eval.scales:
        raise ConfigError(f"eval.scales={cfg.eval.scales}; expected positive numbers, e.g. [0.75, 1.0, 1.25]")
    if cfg.train.sync_bn not in ("auto", True, False):
        raise ConfigError(f"train.sync_bn={cfg.train.sync_bn!r}; allowed: auto, true, false")
    if cfg.train.ema_decay is not None and not cfg.train.ema_decay < 1:
        raise ConfigError(f"train.ema_decay={cfg.train.ema_decay}; expected a number in [0, 1), e.g. 0.999")
    weights = cfg.train.class_weights
    if isinstance(weights, str) and weights != "median_frequency":
        raise ConfigError(f"train.class_weights={weights!r}; allowed: null, median_frequency, or a list of floats")
    _validate_loss(cfg.train.loss)
    _validate_distill(cfg.train.distill)
    _validate_bands(cfg)


def _validate_bands(cfg: Config) -> None:
    """``data.binary`` with ``model.num_classes`` null or 1; ``data.mean``/``std`` of one value per
    input band (``model.in_channels``), std > 0."""
    if cfg.data.binary and cfg.model.num_classes not in (None, 1):
        raise ConfigError(
            f"data.binary: true makes a one-channel model; model.num_classes={cfg.model.num_classes} (use null or 1)"
        )
    bands = cfg.model.in_channels
    for key in ("mean", "std"):
        values = getattr(cfg.data, key)
        if values is None:
            continue
        if len(values) != bands:
            raise ConfigError(f"data.{key} has {len(values)} values for model.in_channels={bands} bands")
        if key == "std" and any(not (v > 0 and math.isfinite(v)) for v in values):
            raise ConfigError(f"data.std={values}; every value must be > 0")


# The losses train.loss may name, and the options of each (besides name and weight). The config
# layer may not import semseg.losses; tests/test_losses.py checks this equals semseg.losses.LOSSES.
LOSS_OPTIONS: dict[str, tuple[str, ...]] = {
    "ce": ("label_smoothing",),
    "ohem": ("thresh", "min_kept"),
    "focal": ("gamma",),
    "dice": ("smooth", "classes"),
    "lovasz": ("classes", "per_image", "max_pixels"),
    "bce": ("pos_weight",),
}


def _validate_loss(terms: Any) -> None:
    """``train.loss``: a non-empty list of mappings ``{name, weight (number >= 0, default 1), options...}``.
    Option values are checked when the loss is built (``engine.loss.build_criterion``)."""
    example = "e.g. [{name: ce, weight: 1.0}, {name: lovasz, weight: 0.5}]"
    if not isinstance(terms, list) or not terms:
        raise ConfigError(f"train.loss={terms!r}; expected a non-empty list of terms, {example}")
    for i, term in enumerate(terms):
        if not isinstance(term, dict):
            raise ConfigError(f"train.loss[{i}]={term!r} is not a mapping; {example}")
        name = term.get("name")
        if not isinstance(name, str) or name not in LOSS_OPTIONS:
            raise ConfigError(f"train.loss[{i}].name={name!r}; allowed: {allowed(LOSS_OPTIONS)}")
        weight = term.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight < float("inf"):
            raise ConfigError(f"train.loss[{i}].weight={weight!r} ({name}); expected a number >= 0")
        unknown = sorted(str(k) for k in set(term) - {"name", "weight", *LOSS_OPTIONS[name]})
        if unknown:
            raise ConfigError(
                f"train.loss[{i}] ({name}): unknown option {', '.join(unknown)}; "
                f"allowed: name, weight, {allowed(LOSS_OPTIONS[name])}"
            )


# The keys of train.distill (engine/distill.py reads them; only teacher is required).
DISTILL_KEYS = ("teacher", "weight", "temperature", "scales", "flip")


def _validate_distill(spec: Any) -> None:
    """``train.distill``: null, or ``{teacher (required), weight >= 0, temperature > 0, scales
    (positive numbers), flip (bool)}``. Whether the teacher can be read is checked when the run is
    built (``engine.distill.build_teacher``)."""
    if spec is None:
        return
    example = "e.g. {teacher: camvid, weight: 1.0, temperature: 1.0, scales: [0.75, 1.0, 1.25], flip: true}"
    if not isinstance(spec, dict):
        raise ConfigError(f"train.distill={spec!r} is not a mapping; {example}")
    unknown = sorted(str(k) for k in set(spec) - set(DISTILL_KEYS))
    if unknown:
        raise ConfigError(f"train.distill: unknown key {', '.join(unknown)}; allowed: {allowed(DISTILL_KEYS)}")
    if not isinstance(spec.get("teacher"), str) or not spec["teacher"]:
        raise ConfigError(f"train.distill.teacher is required: a run folder, checkpoint or shipped model; {example}")

    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

    weight, temperature = spec.get("weight", 1.0), spec.get("temperature", 1.0)
    if not number(weight) or weight < 0:
        raise ConfigError(f"train.distill.weight={weight!r}; expected a number >= 0")
    if not number(temperature) or temperature <= 0:
        raise ConfigError(f"train.distill.temperature={temperature!r}; expected a number > 0")
    scales = spec.get("scales", [1.0])
    if not isinstance(scales, list) or not scales or not all(number(s) and s > 0 for s in scales):
        raise ConfigError(
            f"train.distill.scales={scales!r}; expected a list of positive numbers, e.g. [0.75, 1.0, 1.25]"
        )
    if not isinstance(spec.get("flip", False), bool):
        raise ConfigError(f"train.distill.flip={spec['flip']!r}; expected true or false")


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _coerce(key: str, value: Any, expected: Any) -> Any:
    """Check ``value`` against the annotation; ints are accepted where floats are expected, and
    so are strings like ``2e-3`` (YAML 1.1 reads a float without a dot as a string)."""
    accepts_float = expected is float or (_is_union(expected) and float in typing.get_args(expected))
    if isinstance(value, str) and accepts_float:
        try:
            value = float(value)
        except ValueError:
            pass
    if _matches(value, expected):
        if expected is float or (_is_union(expected) and float in typing.get_args(expected) and isinstance(value, int)):
            return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
        return value
    raise ConfigError(f"{key}={value!r} has the wrong type; expected {_type_name(expected)}")


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    if _is_union(tp):
        return any(_matches(value, t) for t in typing.get_args(tp))
    if tp is type(None):
        return value is None
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _type_name(tp: Any) -> str:
    return str(tp).replace("typing.", "").replace("<class '", "").replace("'>", "")

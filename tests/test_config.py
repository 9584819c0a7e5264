"""Config: presets load completely, overrides are typed, unknown keys are rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from semseg.config import RECIPES_ROOT, Config, apply_overrides, load_config
from semseg.errors import ConfigError

CONFIGS = sorted(RECIPES_ROOT.rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.relative_to(RECIPES_ROOT).with_suffix("").as_posix() for p in CONFIGS])
def test_presets_are_complete_and_valid(path: Path) -> None:
    import yaml

    raw = yaml.safe_load(path.read_text())
    cfg = load_config(path)
    defaults = Config().to_dict()
    for section, values in defaults.items():
        assert set(raw[section]) == set(values), f"{path.name}: section {section} is not complete"
    assert cfg.to_dict()["model"]["name"] == raw["model"]["name"]


def test_overrides_parse_yaml_values() -> None:
    cfg = apply_overrides(
        Config(),
        [
            "train.lr=2e-3",
            "data.crop_size=[64, 96]",
            "data.root=/x",
            "model.options.output_stride=8",
            "train.class_weights=null",
        ],
    )
    assert cfg.train.lr == 0.002 and cfg.data.crop_size == [64, 96] and cfg.data.root == "/x"
    assert cfg.model.options == {"backbone_weights": "imagenet", "output_stride": 8}
    assert isinstance(apply_overrides(Config(), ["train.lr=1"]).train.lr, float)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.rooot=/x", "unknown config key 'data.rooot'; allowed in data: dataset, root"),
        ("nosection.x=1", "unknown config section"),
        ("train.lr=fast", "wrong type"),
        ("train.iterations=0", "train.iterations=0; it must be a number >= 1"),
        ("train.optimizer=adam", "allowed: adamw, sgd"),
        ("data.crop_size=[64]", "crop_size"),
        ("train.class_weights=inverse", "median_frequency"),
        ("lr", "key=value"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        apply_overrides(Config(), [override])


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


@pytest.mark.parametrize("key", ["train.channels_last", "model.options.channels_last"])
def test_one_key_for_the_layout(key: str) -> None:
    with pytest.raises(ConfigError, match=r"is now 'model.channels_last'"):
        apply_overrides(Config(), [f"{key}=false"])
    assert apply_overrides(Config(), ["model.channels_last=false"]).model.channels_last is False


def test_runs_saved_before_the_layout_key_moved_still_load() -> None:
    from semseg.config import from_dict, saved_config

    old = Config().to_dict()
    del old["model"]["channels_last"]
    old["train"]["channels_last"] = False
    with pytest.raises(ConfigError, match=r"model\.channels_last"):
        from_dict(old)  # a user's file gets a pointer, not a silent move
    assert saved_config(old).model.channels_last is False


def test_one_precision_table() -> None:
    from semseg.constants import PRECISIONS
    from semseg.precision import autocast_dtype

    assert Config().train.precision == "auto" and Config().eval.precision == "fp32"
    for key in ("train.precision", "eval.precision"):
        for value in PRECISIONS:
            assert apply_overrides(Config(), [f"{key}={value}"])
        with pytest.raises(ConfigError, match="allowed: auto, fp32, bf16, fp16"):
            apply_overrides(Config(), [f"{key}=fp64"])
    assert autocast_dtype("fp32", "cpu") is None
    with pytest.raises(ConfigError, match="CUDA"):
        autocast_dtype("fp16", "cpu")

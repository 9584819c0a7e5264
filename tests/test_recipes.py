"""Recipes installed with the package: found by name, complete, buildable, runnable from any
working directory; and ``semseg results`` turns what runs measured into the README's table."""

from __future__ import annotations

from pathlib import Path

import pytest

from semseg.cli import main
from semseg.config import list_recipes, load_config, resolve_config_path
from semseg.errors import ConfigError
from semseg.models import create_model

RECIPES = sorted(list_recipes())


def test_the_issue_s_recipes_are_installed() -> None:
    assert {
        "camvid/deeplabv3plus_mobilenetv2_os16_crop288",
        "camvid/unet_scratch_crop288",
        "camvid/pspnet_resnet50_os8_crop288",
        "camvid/deeplabv3_mobilenetv2_os16_crop288",  # the CPU-sized context network
        "camvid/unet_w16_scratch_crop288",  # the CPU-sized from-scratch network
    } <= set(RECIPES)
    for name, path in list_recipes().items():
        assert path.is_relative_to(Path(__import__("semseg").__file__).parent), name  # inside the package


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_resolves_by_name_and_prefix_and_builds(name: str) -> None:
    path = resolve_config_path(name)
    assert resolve_config_path(name.rsplit("_crop", 1)[0]) == path  # a unique prefix is enough
    cfg = load_config(path)
    assert cfg.data.root is None  # the user's ./data/<dataset> or $SEMSEG_DATA, never a developer's path
    assert cfg.output.name == name.replace("/", "_")
    options = {**cfg.model.options}
    if "backbone_weights" in options:
        options["backbone_weights"] = None  # the build, not the ImageNet file (the PSPNet one is imported by users)
    model = create_model(cfg.model.name, num_classes=11, **options)
    assert model.num_classes == 11


def test_an_unknown_or_ambiguous_recipe_lists_the_names() -> None:
    with pytest.raises(
        ConfigError,
        match=r"not found; installed recipes: camvid/deeplabv3_mobilenetv2_os16_crop288, camvid/deeplabv3plus_mobilenetv2",
    ):
        resolve_config_path("camvid/segformer")
    with pytest.raises(ConfigError, match=r"'camvid/' is ambiguous"):
        resolve_config_path("camvid/")


def test_configs_lists_the_recipes(capsys) -> None:
    assert main(["configs", "camvid/*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == [n for n in RECIPES if n.startswith("camvid/")]


def test_a_recipe_by_name_trains_then_results_tabulates_it(tmp_path: Path, monkeypatch, capsys) -> None:
    """The DeepLabv3+ recipe by its short name, on the embedded sample frames for 2 iterations,
    from a working directory without any config files; then a multi-scale and a bfloat16
    evaluation beside it, and ``semseg results`` reads all three."""
    monkeypatch.chdir(tmp_path)
    sets = ["data.dataset=sample", "train.iterations=2", "train.eval_every=2", "data.max_val_images=2",
            "data.batch_size=2", "data.crop_size=[64, 64]", "output.dir=runs", "train.ema_decay=null"]  # fmt: skip
    args = ["train", "--config", "camvid/deeplabv3plus_mobilenetv2", "--no-progress"]
    for item in sets:
        args += ["--set", item]
    assert main(args) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("camvid_deeplabv3plus_mobilenetv2_os16_crop288")
    assert (
        main(["eval", str(run), "--scales", "0.75,1", "--flip", "--out", str(run / "eval" / "msflip"), "--no-progress"])
        == 0
    )
    assert main(["eval", str(run), "--precision", "bf16", "--out", str(run / "eval" / "bf16"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["results", str(run), "--out", "table.md"]) == 0
    table = (tmp_path / "table.md").read_text().splitlines()
    assert table[0].startswith("| model | inference | mIoU | pixel acc. | Sky | Building |")
    rows = [line for line in table[2:] if line.startswith("| ")]
    assert sorted(r.split(" | ")[1] for r in rows) == ["scales 0.75-1 + flip", "single scale", "single scale, bf16"]
    for row in rows:  # per-class IoU from the run's metrics.json (a mapping) and from eval --out (a list)
        sky = row.split(" | ")[4]
        assert sky != "-" and 0 <= float(sky) <= 100
    commands = " ".join(rows)
    assert f"`semseg eval {run} --scales 0.75,1 --flip`" in commands
    assert f"`semseg eval {run} --precision bf16`" in commands
    assert table[-1].startswith("Machine: ") and "torch" in table[-1]
    assert main(["results", str(tmp_path / "nothing")]) == 2

"""``semseg weights convert --from mmseg``: mmsegmentation 1.x checkpoints give mmseg's outputs.

How the fixtures were made (tests/fixtures/convert/README.md has the commands): mmsegmentation
1.2.2 with mmcv-lite 2.1.0 and mmengine 0.10.7, installed with ``pip install --target`` into a
scratch folder, built each network from its config in ``configs/`` (named in the fixture's
``manifest.json``) with ``MODELS.build(cfg.model)``; its state dict's keys and shapes were
written to ``manifest.json``, the weights were replaced by
:func:`test_convert_fixture_weights.fixture_weights` (``strict=True``), and
``model.encode_decode(x)`` (the logits resized to the input as mmseg's whole-image inference does)
and each auxiliary head's resized logits were stored in ``outputs.safetensors`` with the input
``x`` (1x3x33x41; HRNet 1x3x32x64, U-Net 1x3x32x48). No mmseg code is needed here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_convert_fixture_weights import FIXTURES, fixture_weights, read_manifest, weight_sum

import semseg
from semseg.cli import main
from semseg.convert import FORMATS, convert_file
from semseg.engine.checkpoint import read_meta
from semseg.errors import CheckpointError


def mmseg_checkpoint(name: str, tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor], dict]:
    """The fixture as an mmseg checkpoint file, its stored outputs, and its manifest."""
    manifest = read_manifest(f"mmseg/{name}")
    weights = fixture_weights(manifest["shapes"], manifest["seed"])
    assert weight_sum(weights) == pytest.approx(manifest["weight_sum"], rel=1e-9), "torch's generator changed"
    path = tmp_path / f"{name}.pth"
    meta = {"dataset_meta": {"classes": tuple(manifest["classes"])}, "mmseg_version": "1.2.2"}
    torch.save({"meta": meta, "state_dict": weights}, path)
    return path, load_file(str(FIXTURES / "mmseg" / name / "outputs.safetensors")), manifest


def assert_same(ours: torch.Tensor, ref: torch.Tensor) -> None:
    """Within 1e-5 of the reference, relative to its largest magnitude."""
    assert ours.shape == ref.shape
    err = float((ours - ref).abs().max() / ref.abs().max())
    assert err <= 1e-5, err


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("pspnet_r50-d8_cityscapes", "pspnet_r50-d8"),
        ("fcn_r50-d8_cityscapes", "fcn_r50-d8"),
        ("deeplabv3_r50-d8_cityscapes", "deeplabv3_r50-d8"),
        ("deeplabv3plus_r50-d8_cityscapes", "deeplabv3plus_r50-d8"),
        ("encnet_r50-d8_cityscapes", "encnet_r50-d8"),
        # Semantic FPN with mmseg's FPNHead: BatchNorm in the scale stages (norm="batch").
        ("fpn_r50_cityscapes", "fpn_r50"),
        # Input 32x64: mmseg's HRNet upsamples each fused branch by 2^k, then resizes to the
        # target size; semseg resizes once; the two agree on inputs that are multiples of 32.
        ("fcn_hr18_cityscapes", "fcn_hr18"),
        # U-Net (BN, padded convs, InterpConv up-sampling, FCN heads on the expanding path), whose
        # input sides must be multiples of 16: Cityscapes (19 classes) and DRIVE (2).
        ("unet-s5-d16_fcn_cityscapes", "fcn_unet_s5-d16"),
        ("unet-s5-d16_fcn_drive", "fcn_unet_s5-d16"),
    ],
)
def test_mmseg_outputs_reproduced(name: str, source: str, tmp_path: Path) -> None:
    path, outputs, _ = mmseg_checkpoint(name, tmp_path)
    converted = convert_file(path, "mmseg")
    assert converted.source_model == source
    with torch.no_grad():
        got = converted.model(outputs["input"], return_aux=True)
    assert_same(got.logits, outputs["logits"])
    if "aux0" in outputs:
        assert_same(got.aux["aux"], outputs["aux0"])
    if "se" in outputs:  # EncNet's SE-loss logits (N, num_classes)
        assert_same(got.aux["se"], outputs["se"])


def test_mmseg_class_lists(tmp_path: Path) -> None:
    """An ADE20K checkpoint gets semseg's ADE20K class names and palette (Cityscapes: the CLI
    test; VOC: the torchvision tests)."""
    count, dataset, first = 150, "ade20k", "wall"
    manifest = read_manifest("mmseg/pspnet_r50-d8_cityscapes")
    shapes = dict(manifest["shapes"])
    for key in ("decode_head.conv_seg", "auxiliary_head.conv_seg"):
        shapes[f"{key}.weight"] = [count, *shapes[f"{key}.weight"][1:]]
        shapes[f"{key}.bias"] = [count]
    path = tmp_path / "psp.pth"
    torch.save({"meta": {}, "state_dict": fixture_weights(shapes, 0)}, path)
    model = semseg.load_model(semseg.convert_checkpoint(path, "mmseg", out=tmp_path / "out"))
    assert model.num_classes == count and len(model.class_names) == count and len(model.palette) == count
    assert model.class_names[0] == first and read_meta(tmp_path / "out")["config"]["data"]["dataset"] == dataset


def test_mmseg_cli_checkpoint_has_cityscapes_labels(tmp_path: Path) -> None:
    path, outputs, manifest = mmseg_checkpoint("pspnet_r50-d8_cityscapes", tmp_path)
    out = tmp_path / "psp"
    assert main(["weights", "convert", str(path), "--from", "mmseg", "--out", str(out)]) == 0
    model = semseg.load_model(out)
    assert model.class_names == manifest["classes"] and len(model.palette) == 19
    assert read_meta(out)["config"]["data"]["dataset"] == "cityscapes"
    with torch.no_grad():
        assert_same(model(outputs["input"]), outputs["logits"])


def test_mmseg_checkpoint_is_not_torchvision(tmp_path: Path) -> None:
    path, _, _ = mmseg_checkpoint("pspnet_r50-d8_cityscapes", tmp_path)
    with pytest.raises(CheckpointError, match=r"not a torchvision checkpoint; it looks like mmseg's pspnet_r50-d8"):
        convert_file(path, "torchvision")


def test_mmseg_class_names_from_both_meta_layouts() -> None:
    """1.x files keep the names in ``meta.dataset_meta.classes``; the 0.x files the 1.x model zoo
    links keep them in ``meta.CLASSES``."""
    assert FORMATS["mmseg"].class_names({"meta": {"dataset_meta": {"classes": ("road", "sky")}}}) == ["road", "sky"]
    assert FORMATS["mmseg"].class_names({"meta": {"CLASSES": ("road", "sky"), "PALETTE": [[0, 0, 0]]}}) == [
        "road",
        "sky",
    ]
    assert FORMATS["mmseg"].class_names({"state_dict": {}}) is None


def test_mmseg_unet_round_trip_keeps_its_options_and_class_names(tmp_path: Path) -> None:
    """The converted folder rebuilds the U-Net's mmseg form from its recorded options, and a
    2-class (DRIVE) checkpoint keeps the names it carries."""
    path, outputs, manifest = mmseg_checkpoint("unet-s5-d16_fcn_drive", tmp_path)
    model = semseg.load_model(semseg.convert_checkpoint(path, "mmseg", out=tmp_path / "out"))
    assert model.class_names == manifest["classes"] == ["background", "vessel"]
    assert model.model_options["upsample"] == "interp" and model.model_options["head_form"] == "fcn"
    with torch.no_grad():
        assert_same(model.eval()(outputs["input"]), outputs["logits"])


def test_mmseg_unet_with_other_heads_is_not_taken_for_another_family() -> None:
    """mmseg's U-Net with a PSP head (``unet-s5-d16_pspnet``) must not pass for ``pspnet_r50-d8``
    (semseg's unet has no PSP head): it is not recognised, and ``--model`` is asked for."""
    keys = {k: tuple(v) for k, v in read_manifest("mmseg/unet-s5-d16_fcn_drive")["shapes"].items()}
    assert FORMATS["mmseg"].detect(keys) == "fcn_unet_s5-d16"
    psp = {k: v for k, v in keys.items() if not k.startswith("decode_head.convs")}
    psp["decode_head.psp_modules.0.1.conv.weight"] = (16, 64, 1, 1)
    assert FORMATS["mmseg"].detect(psp) is None

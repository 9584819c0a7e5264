"""``semseg weights convert --from torchvision``: torchvision's DeepLabv3 and FCN checkpoints
give the same outputs in semseg.

Each fixture is made inside the test: torchvision's own builder
(``torchvision.models.segmentation.<name>(weights=None, weights_backbone=None, aux_loss=True)``)
with seeded random weights and random batch-norm statistics (so a swapped BN or an identity
layer cannot pass), saved with ``torch.save(model.state_dict())`` as torchvision's released
``.pth`` files are, then converted through the public API or the CLI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

import semseg
from semseg.cli import main
from semseg.convert import convert_file
from semseg.engine.checkpoint import load_checkpoint_model, read_meta


def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Seeded random BN affine parameters and running statistics (the builder's are 1 and 0)."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = torch.rand(m.weight.shape, generator=gen) + 0.5
            m.bias.data = torch.randn(m.bias.shape, generator=gen) * 0.1
            m.running_mean = torch.randn(m.running_mean.shape, generator=gen) * 0.1
            m.running_var = torch.rand(m.running_var.shape, generator=gen) + 0.5
    return model.eval()


def torchvision_model(name: str, seed: int = 0, aux_loss: bool = True) -> nn.Module:
    torch.manual_seed(seed)
    builder = getattr(torchvision.models.segmentation, name)
    return randomize(builder(weights=None, weights_backbone=None, aux_loss=aux_loss, num_classes=21), seed)


def assert_same(ours: torch.Tensor, ref: torch.Tensor) -> None:
    """Within 1e-5 of the reference, relative to its largest magnitude."""
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() <= 1e-5 * ref.abs().max()


@pytest.mark.parametrize("name", ["deeplabv3_resnet50", "fcn_resnet50", "deeplabv3_resnet101", "fcn_resnet101"])
def test_torchvision_outputs_reproduced(name: str, tmp_path: Path) -> None:
    ref = torchvision_model(name)
    file = tmp_path / f"{name}_coco.pth"
    torch.save(ref.state_dict(), file)
    converted = convert_file(file, "torchvision")  # the network recognised from its keys
    assert converted.source_model == name
    x = torch.randn(1, 3, 37, 45, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ref(x)
        got = converted.model(x, return_aux=True)
    assert_same(got.logits, expected["out"])
    assert_same(got.aux["aux"], expected["aux"])


def test_saved_checkpoint_reproduces_torchvision(tmp_path: Path) -> None:
    """The folder ``convert_checkpoint`` writes is what ``load_model`` reads: same outputs,
    VOC classes and palette, torchvision's normalisation."""
    ref = torchvision_model("deeplabv3_resnet50", seed=4)
    file = tmp_path / "deeplabv3_resnet50_coco.pth"
    torch.save(ref.state_dict(), file)
    folder = semseg.convert_checkpoint(file, "torchvision", out=tmp_path / "converted")
    model = semseg.load_model(folder)
    x = torch.randn(1, 3, 41, 35, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ref(x)
        got = model(x, return_aux=True)
    assert_same(got.logits, expected["out"])
    assert_same(got.aux["aux"], expected["aux"])
    meta = read_meta(folder)
    assert meta["converted_from"]["model"] == "deeplabv3_resnet50" and meta["num_classes"] == 21
    assert meta["config"]["data"]["dataset"] == "voc"
    assert model.class_names[:2] == ["background", "aeroplane"] and len(model.palette) == 21
    assert model.mean == pytest.approx((0.485, 0.456, 0.406)) and model.std == pytest.approx((0.229, 0.224, 0.225))


def test_without_aux_head_and_explicit_model(tmp_path: Path) -> None:
    """A state dict without ``aux_classifier`` (``aux_loss=False``) converts to a model without one."""
    ref = torchvision_model("fcn_resnet50", seed=3, aux_loss=False)
    file = tmp_path / "fcn.pth"
    torch.save(ref.state_dict(), file)
    converted = convert_file(file, "torchvision", model="fcn_resnet50")
    assert len(converted.model.aux_heads) == 0 and converted.model.model_name == "fcn_resnet50_d8"
    x = torch.randn(1, 3, 33, 29)
    with torch.no_grad():
        assert_same(converted.model(x), ref(x)["out"])


def test_cli_convert_then_checkpoint_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = torchvision_model("fcn_resnet50", seed=2)
    file = tmp_path / "fcn_resnet50_coco-1167a1af.pth"
    torch.save(ref.state_dict(), file)
    assert main(["weights", "convert", str(file), "--from", "torchvision"]) == 0
    folder = tmp_path / "fcn_resnet50_coco-1167a1af_semseg"
    assert "fcn_resnet50_d8" in capsys.readouterr().out
    model = load_checkpoint_model(folder).eval()
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        assert_same(model(x), ref(x)["out"])
    # The folder is never replaced silently.
    assert main(["weights", "convert", str(file), "--from", "torchvision"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # semseg predict takes the converted folder as it is.
    image = tmp_path / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (36, 44, 3), dtype=np.uint8)).save(image)
    assert main(["predict", str(image), "--model", str(folder), "--out", str(tmp_path / "pred"), "--no-progress"]) == 0
    labels = np.array(Image.open(tmp_path / "pred" / "image_labels.png"))
    assert labels.shape == (36, 44) and labels.max() < 21

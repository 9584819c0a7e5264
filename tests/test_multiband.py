"""Multi-band inputs: ``create_model(..., in_channels=N)`` for every model, and the rule that adapts a
pretrained first convolution (the mean of the RGB filters, repeated, scaled by 3 / N)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

from semseg import create_model
from semseg.errors import InvalidOptionError
from semseg.models import registry
from semseg.models.input_conv import adapt_input_conv, first_conv


def test_adapt_input_conv_rule() -> None:
    weight = torch.randn(8, 3, 3, 3)
    assert torch.equal(adapt_input_conv(weight, 3), weight)
    one = adapt_input_conv(weight, 1)
    torch.testing.assert_close(one, weight.sum(1, keepdim=True))
    five = adapt_input_conv(weight, 5)
    assert five.shape == (8, 5, 3, 3)
    torch.testing.assert_close(five, (weight.mean(1, keepdim=True) * 3 / 5).repeat(1, 5, 1, 1))
    with pytest.raises(InvalidOptionError):
        adapt_input_conv(torch.randn(8, 4, 3, 3), 2)


@pytest.mark.parametrize("name", ["fcn_resnet18_d8", "deeplabv3plus_mobilenetv2"])
@pytest.mark.parametrize("bands", [1, 4])
def test_pretrained_first_conv_sees_grey_as_rgb(name: str, bands: int, tmp_path: Path) -> None:
    """With random "pretrained" backbone weights, an N-band image of one grey channel repeated gives
    the RGB model's output for that grey image repeated in R, G and B."""
    torch.manual_seed(1)
    donor = create_model(name, 2, backbone_weights=None)
    path = tmp_path / "backbone.pth"
    torch.save(donor.backbone.state_dict(), path)
    torch.manual_seed(2)
    rgb = create_model(name, 2, backbone_weights=str(path)).eval()
    torch.manual_seed(2)
    multi = create_model(name, 2, backbone_weights=str(path), in_channels=bands).eval()
    assert first_conv(multi)[1].in_channels == bands
    assert multi.model_options["in_channels"] == bands
    assert len(multi.mean) == len(multi.std) == bands
    grey = torch.randn(1, 1, 40, 48)
    with torch.no_grad():
        expected = rgb(grey.repeat(1, 3, 1, 1))
        got = multi(grey.repeat(1, bands, 1, 1))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["naive_convnet", "unet", "pspnet_resnet50", "hrnetv2_w18", "fcn8s_vgg16"])
def test_in_channels_for_any_model(name: str) -> None:
    takes_weights = "backbone_weights" in inspect.signature(registry._REGISTRY[name]).parameters
    options = {"backbone_weights": None} if takes_weights else {}
    model = create_model(name, 2, in_channels=4, **options).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 4, 64, 64)).shape == (1, 2, 64, 64)
    assert len(model.mean) == 4
    again = create_model(name, 2, **model.model_options)
    assert first_conv(again)[1].in_channels == 4


def test_in_channels_must_be_positive() -> None:
    with pytest.raises(InvalidOptionError, match="in_channels"):
        create_model("naive_convnet", 2, in_channels=0)

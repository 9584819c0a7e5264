"""One test over every registered model: build with random weights, forward an odd-sized input,
check shapes, aux outputs and that backward reaches the backbone."""

from __future__ import annotations

import inspect

import pytest
import torch

from semseg import SegmentationOutput, create_model, list_models
from semseg.errors import InvalidOptionError
from semseg.models import registry

NUM_CLASSES = 3


@pytest.mark.parametrize("name", list_models())
def test_every_model_forward_backward(name: str) -> None:
    model = create_model(name, num_classes=NUM_CLASSES)
    model.train()
    x = torch.randn(2, 3, 97, 131)
    out = model(x, return_aux=True)
    assert isinstance(out, SegmentationOutput)
    assert out.logits.shape == (2, NUM_CLASSES, 97, 131)
    for key, value in out.aux.items():
        assert torch.isfinite(value).all(), key
    loss = out.logits.logsumexp(1).mean() + sum(v.float().mean() for v in out.aux.values())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) > 0.9 * len(grads)
    model.eval()
    with torch.no_grad():
        assert model(x[:1]).shape == (1, NUM_CLASSES, 97, 131)


def test_list_models_pattern() -> None:
    names = list_models("deeplabv3plus*")
    assert "deeplabv3plus_mobilenetv2" in names
    assert all(n.startswith("deeplabv3plus") for n in names)
    assert list_models("no-such-model*") == []


def test_family_variants_check_their_options() -> None:
    # Variants registered from one family builder show the family's options (not **kwargs),
    # so unknown options are refused with the allowed list, and the variant is bound.
    builder_options = inspect.signature(registry._REGISTRY["pspnet_resnet101"]).parameters
    assert "depth" not in builder_options and "bins" in builder_options
    with pytest.raises(InvalidOptionError, match=r"no option depth; allowed: .*bins"):
        create_model("pspnet_resnet50", depth=101)
    assert "ResNet-101" in (registry._REGISTRY["pspnet_resnet101"].__doc__ or "")
    assert len(create_model("fcn_resnet18_d8", num_classes=3).backbone.layer4) == 2

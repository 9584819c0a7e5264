"""Every registered model through the one ``SegmentationModel.forward``: output and aux shapes,
backward into the backbone and the aux heads; the head output contract; the metadata a model
carries; the registry."""

from __future__ import annotations

import fnmatch
import inspect
import json

import pytest
import torch
from torch import Tensor, nn

from semseg import SegmentationModel, SegmentationOutput, create_model, list_models
from semseg.errors import InvalidOptionError
from semseg.models import registry
from semseg.models.heads import HeadOutput
from semseg.models.zoo.unet import UNet

NUM_CLASSES = 3
SIZE = (35, 45)  # odd, not a multiple of any stride; 32 is the smallest SegNet and same-padded FCN take
# Extra outputs a head adds to ``aux`` at default options, by model-name pattern.
HEAD_EXTRAS = {"encnet_*": {"se"}}


def _accepts(name: str, option: str) -> bool:
    return option in inspect.signature(registry._REGISTRY[name]).parameters


def _extras(name: str) -> set[str]:
    return {key for pattern, keys in HEAD_EXTRAS.items() if fnmatch.fnmatch(name, pattern) for key in keys}


@pytest.mark.parametrize("name", list_models())
def test_every_model_forward_aux_and_backward(name: str) -> None:
    """Built with ``aux_loss=True`` where the builder has it, so the aux check can fail: ``"aux"``
    must come back dense at the input size, head extras (EncNet's ``"se"``) as ``(N, C)``, and
    gradients must reach the backbone, the head and the aux head."""
    aux_loss = _accepts(name, "aux_loss")
    model = create_model(name, num_classes=NUM_CLASSES, **({"aux_loss": True} if aux_loss else {}))
    assert isinstance(model, SegmentationModel)
    if fnmatch.fnmatch(name, "fcn*s_*"):
        # FCN's score layers start at zero (the released nets), which leaves every layer below
        # them without gradient at step 0; random scores let this check reach the backbone.
        for m in model.head.modules():
            if isinstance(m, nn.Conv2d) and m.out_channels == NUM_CLASSES:
                nn.init.normal_(m.weight, std=0.01)
    # One forward serves every network; U-Net's overlap-tile mode is the documented exception.
    assert type(model).forward is SegmentationModel.forward or type(model) is UNet
    model.train()
    x = torch.randn(2, 3, *SIZE)
    out = model(x, return_aux=True)
    assert isinstance(out, SegmentationOutput)
    assert out.logits.shape == (2, NUM_CLASSES, *SIZE)
    expected = ({"aux"} if aux_loss else set()) | _extras(name)
    assert set(out.aux) == expected
    for key, value in out.aux.items():
        assert value.shape == ((2, NUM_CLASSES) if key == "se" else (2, NUM_CLASSES, *SIZE)), key
        assert torch.isfinite(value).all(), key
    loss = out.logits.logsumexp(1).mean() + sum(v.float().logsumexp(1).mean() for v in out.aux.values())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) > 0.9 * len(grads)
    if aux_loss:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.aux_heads["aux"].parameters())
    model.eval()
    with torch.no_grad():
        plain = model(x[:1])
    assert isinstance(plain, Tensor) and plain.shape == (1, NUM_CLASSES, *SIZE)


def test_default_options_have_no_aux_head() -> None:
    with torch.device("meta"):
        for name in list_models():
            model = create_model(name, num_classes=NUM_CLASSES)
            assert len(model.aux_heads) == 0, name


def test_encnet_se_logits_and_aux() -> None:
    model = create_model("encnet_resnet50", num_classes=4, aux_loss=True).eval()
    x = torch.randn(1, 3, 33, 41)
    with torch.no_grad():
        out = model(x, return_aux=True)
        plain = model(x)
    assert out.aux["se"].shape == (1, 4) and out.aux["aux"].shape == (1, 4, 33, 41)
    assert torch.equal(out.logits, plain)  # return_aux adds outputs, it does not change the logits
    assert set(create_model("encnet_resnet50", num_classes=4, se_loss=False)(x, return_aux=True).aux) == set()


def test_deeplabv1_msc_branches_change_the_output() -> None:
    model = create_model("deeplabv1_vgg16", num_classes=NUM_CLASSES, msc=True).eval()
    x = torch.randn(1, 3, 41, 49)
    with torch.no_grad():
        with_branches = model(x)
        branches, model.head.msc = model.head.msc, None
        without = model(x)
        model.head.msc = branches
    assert with_branches.shape == without.shape == (1, NUM_CLASSES, 41, 49)
    assert not torch.allclose(with_branches, without)
    # The branch on the image itself is wired in: a gradient reaches its first conv.
    model(x, return_aux=True).logits.sum().backward()
    assert model.head.msc.branches[0][0].weight.grad.abs().sum() > 0


class _TwoFeatures(nn.Module):
    out_channels, strides = (4, 4), (1, 2)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> list[Tensor]:
        return [x.repeat(1, 2, 1, 1)[:, :4], self.conv(x)]


class _Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Conv2d(4, NUM_CLASSES, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.classifier(features[-1])


class _HeadWithExtras(_Classifier):
    def forward(self, features: list[Tensor]) -> HeadOutput:  # type: ignore[override]
        logits = super().forward(features)
        return HeadOutput(logits, {"dense": logits * 2, "global": logits.mean(dim=(2, 3))})


def test_head_output_extras_join_aux() -> None:
    """Dense extras are resized to the input like aux heads; ``(N, C)`` ones pass as they are."""
    model = SegmentationModel(_TwoFeatures(), _HeadWithExtras(), {"aux": _Classifier()}, num_classes=NUM_CLASSES)
    x = torch.randn(2, 3, 15, 17)
    out = model(x, return_aux=True)
    assert out.logits.shape == (2, NUM_CLASSES, 15, 17)
    assert set(out.aux) == {"aux", "dense", "global"}
    assert out.aux["dense"].shape == (2, NUM_CLASSES, 15, 17) and out.aux["global"].shape == (2, NUM_CLASSES)
    assert torch.allclose(out.aux["dense"], 2 * out.logits, atol=1e-6)
    assert isinstance(out.aux["aux"], Tensor) and out.aux["aux"].shape == (2, NUM_CLASSES, 15, 17)
    assert torch.equal(model(x), out.logits)


def _small_model() -> SegmentationModel:
    return create_model("naive_convnet", num_classes=NUM_CLASSES, width=4, depth=1)


def test_metadata_fields_and_round_trip() -> None:
    model = _small_model()
    assert model.model_name == "naive_convnet" and model.model_options == {"width": 4, "depth": 1}
    assert model.class_names is None and model.palette is None
    assert model.mean == (0.485, 0.456, 0.406) and model.std == (0.229, 0.224, 0.225)
    returned = model.set_metadata(["road", "car", "sky"], [(1, 2, 3), [4, 5, 6], (7, 8, 9)], [0.5] * 3, (0.25,) * 3)
    assert returned is model
    assert model.class_names == ["road", "car", "sky"] and model.palette == [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    assert model.mean == (0.5, 0.5, 0.5) and model.std == (0.25, 0.25, 0.25)
    meta = model.metadata()
    assert meta == {
        "class_names": ["road", "car", "sky"],
        "palette": [[1, 2, 3], [4, 5, 6], [7, 8, 9]],
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
    }
    restored = _small_model().set_metadata(**json.loads(json.dumps(meta)))
    assert restored.metadata() == meta and restored.palette == model.palette
    model.set_metadata(["a", "b", "c"])  # what is not given stays
    assert model.palette == [(1, 2, 3), (4, 5, 6), (7, 8, 9)] and model.mean == (0.5, 0.5, 0.5)
    assert _small_model().metadata()["class_names"] is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"class_names": ["a", "b"]}, "3 classes but 2 class names"),
        ({"class_names": ["a", "b", "c", "d"]}, "3 classes but 4 class names"),
        ({"palette": [(0, 0, 0)] * 2}, "3 classes but 2 palette colours"),
        ({"palette": [(0, 0, 0), (0, 0, 256), (1, 1, 1)]}, "RGB triples"),
        ({"palette": [(0, 0), (0, 0, 0), (1, 1, 1)]}, "RGB triples"),
        ({"mean": (0.5, 0.5)}, "one value per input channel"),
        ({"std": (0.5, 0.0, 0.5)}, "std > 0"),
    ],
)
def test_set_metadata_refuses_what_does_not_fit(kwargs: dict, match: str) -> None:
    model = _small_model()
    with pytest.raises(InvalidOptionError, match=match):
        model.set_metadata(**kwargs)
    assert model.class_names is None and model.mean == (0.485, 0.456, 0.406)


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


def test_a_builder_must_return_a_segmentation_model() -> None:
    def not_a_segmentation_model(*, num_classes: int = 21) -> nn.Module:
        return nn.Conv2d(3, num_classes, 1)

    registry.register_model(not_a_segmentation_model)  # type: ignore[arg-type]
    try:
        with pytest.raises(TypeError, match="not a SegmentationModel"):
            create_model("not_a_segmentation_model")
    finally:
        del registry._REGISTRY["not_a_segmentation_model"]

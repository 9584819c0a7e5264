"""The inference fast path: folded batch norm, inference mode, bf16 autocast, each against the
plain path within a stated tolerance; the caller's model is never changed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semseg.api import load_model
from semseg.inference import Predictor
from semseg.inference.fastpath import FOLD_TOLERANCE, fast_inference_model, fold_stats
from semseg.models import create_model
from semseg.precision import autocast_dtype


def randomise_norms(model: nn.Module) -> nn.Module:
    """BN statistics far from the identity, so that a wrong fold shows."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model


class Tricky(nn.Module):
    """conv1 -> bn1 (foldable); conv2's output is read by bn2 AND added back (not foldable);
    conv3 -> in-place ReLU -> bn3 (not foldable)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv3, self.relu, self.bn3 = nn.Conv2d(8, 4, 1), nn.ReLU(inplace=True), nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.conv1(x))
        y = self.conv2(x)
        x = self.bn2(y) + y
        return self.bn3(self.relu(self.conv3(x)))


def max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max()) / (1.0 + float(b.abs().max()))


@pytest.mark.parametrize("name", ["fcn_resnet18_d8", "unet"])
def test_folded_model_equals_plain_and_original_untouched(name: str) -> None:
    torch.manual_seed(0)
    model = randomise_norms(create_model(name, num_classes=4)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = fast_inference_model(model)
    # The caller's model: same mode, same keys, same values (it may be trained afterwards).
    assert model.training
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    stats = fold_stats(model, fast)
    assert stats["left"] == 0 and (stats["batchnorms"] > 0) == (name != "unet")
    x = torch.randn(2, 3, 40, 56)
    with torch.no_grad():
        assert max_rel_diff(fast(x), model.eval()(x)) < FOLD_TOLERANCE
    assert fast.class_names == model.class_names and tuple(fast.mean) == tuple(model.mean)


def test_only_exact_folds_are_made() -> None:
    torch.manual_seed(0)
    model = randomise_norms(Tricky()).eval()
    fast = fast_inference_model(model)
    assert isinstance(fast.bn1, nn.Identity)
    assert isinstance(fast.bn3, nn.BatchNorm2d)  # a ReLU between: not a conv's output
    assert isinstance(fast.bn2, nn.BatchNorm2d)  # the add reads conv2's output as well
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert max_rel_diff(fast(x), model(x)) < FOLD_TOLERANCE


def test_channels_last_weights_stay_channels_last() -> None:
    model = create_model("fcn_resnet18_d8", num_classes=3, channels_last=True).eval()
    fast = fast_inference_model(model)
    convs = [m for m in fast.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)


def test_predictor_fast_equals_plain_and_follows_weight_changes() -> None:
    torch.manual_seed(0)
    model = randomise_norms(create_model("fcn_resnet18_d8", num_classes=4)).eval()
    image = torch.randint(0, 256, (3, 48, 40), dtype=torch.uint8)
    fast, plain = Predictor(model), Predictor(model, fast=False)
    a, b = fast.scores(image), plain.scores(image)
    assert max_rel_diff(a, b) < FOLD_TOLERANCE
    assert not a.is_inference()  # callers may modify the scores in place
    assert fast.network() is not model and plain.network() is model
    first = fast.network()
    assert fast.network() is first  # unchanged weights: the same copy
    with torch.no_grad():
        next(model.parameters()).mul_(1.5)  # a weight update (as an optimizer step) rebuilds it
    assert fast.network() is not first
    a, b = fast.scores(image), plain.scores(image)
    assert max_rel_diff(a, b) < FOLD_TOLERANCE
    multi = Predictor(model, scales=(0.5, 1.0), flip=True)
    multi_plain = Predictor(model, scales=(0.5, 1.0), flip=True, fast=False)
    assert max_rel_diff(multi.scores(image), multi_plain.scores(image)) < FOLD_TOLERANCE


def test_predictor_in_train_mode_uses_the_model_itself() -> None:
    model = create_model("fcn_resnet18_d8", num_classes=3).train()
    assert Predictor(model).network() is model


def test_load_model_fast_flag() -> None:
    plain = load_model("fcn_resnet18_d8", num_classes=3)
    assert fold_stats(plain, plain)["left"] > 0  # default: a trainable model with its BN
    fast = load_model("fcn_resnet18_d8", num_classes=3, fast=True)
    assert fold_stats(fast, fast)["left"] == 0 and not fast.training
    assert Predictor(fast).network() is fast  # not folded twice


@pytest.mark.skipif(autocast_dtype("auto", "cpu") is None, reason="this CPU has no native bf16")
def test_bf16_autocast_close_to_fp32() -> None:
    """bf16 autocast against fp32 on the fast path: probabilities within 0.05 and labels equal
    on >= 95% of pixels of a random-weight model (measured: about 0.01 and 99%). The accuracy
    change of a trained model is measured on CamVid val (docs/benchmarks.md)."""
    torch.manual_seed(0)
    model = randomise_norms(create_model("fcn_resnet18_d8", num_classes=4)).eval()
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    fp32 = Predictor(model, precision="fp32")
    bf16 = Predictor(model, precision="bf16")
    p32 = fp32.probabilities(fp32.scores(image))
    p16 = bf16.probabilities(bf16.scores(image))
    assert float((p32 - p16).abs().max()) < 0.05
    assert float((p32.argmax(0) == p16.argmax(0)).float().mean()) >= 0.95


def test_slide_batched_tiles_equal_one_at_a_time() -> None:
    from semseg.inference import infer_slide

    torch.manual_seed(0)
    model = randomise_norms(create_model("fcn_resnet18_d8", num_classes=3)).eval()
    x = torch.randn(2, 3, 50, 70)
    with torch.inference_mode():
        one = infer_slide(model, x, crop=32, stride=21)
        for k in (2, 5, 100):
            assert max_rel_diff(infer_slide(model, x, crop=32, stride=21, tile_batch=k), one) < 1e-5

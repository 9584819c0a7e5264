"""Inference modes: whole, sliding window, multi-scale + flip; the dispatcher and its errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import semseg
from semseg.errors import DataError, InvalidOptionError
from semseg.inference import infer_multiscale, infer_slide, infer_whole, inference


class ConvNet(nn.Module):
    """Two 3x3 convs (zero padding): translation-equivariant, so crops see what the whole image sees
    away from their borders."""

    def __init__(self, classes: int = 4, symmetric: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, classes, 3, padding=1)
        if symmetric:  # kernels equal to their left-right mirror: the net commutes with flips
            with torch.no_grad():
                for conv in (self.conv1, self.conv2):
                    conv.weight.copy_((conv.weight + conv.weight.flip(-1)) / 2)
        self.mean, self.std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.conv1(x)))


class StridedNet(nn.Module):
    """Logits at 1/4 resolution (like a real head), resized by the inference functions."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, classes, 4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_slide_equals_whole_when_one_crop_covers_the_image() -> None:
    model, x = ConvNet().eval(), torch.randn(2, 3, 20, 28)
    whole = infer_whole(model, x)
    assert torch.allclose(infer_slide(model, x, crop=(20, 28), stride=(10, 10)), whole, atol=1e-6)
    # A crop larger than the image: zero padding (the normalised mean) at bottom/right is what a
    # zero-padded conv sees there already, so the result is the same.
    one_conv = nn.Conv2d(3, 4, 3, padding=1).eval()
    assert torch.allclose(infer_slide(one_conv, x, crop=(32, 40)), infer_whole(one_conv, x), atol=1e-6)


def test_slide_averages_overlaps_by_their_counts() -> None:
    pointwise = nn.Conv2d(3, 5, 1).eval()  # no context: every window predicts each pixel alike
    x = torch.randn(1, 3, 23, 31)
    out = infer_slide(pointwise, x, crop=(8, 10), stride=(5, 3))
    assert torch.allclose(out, pointwise(x), atol=1e-5)
    # With context, windows disagree near their borders: the result differs from whole inference.
    model = ConvNet().eval()
    assert not torch.allclose(infer_slide(model, x, crop=(8, 10), stride=(5, 3)), model(x), atol=1e-3)


def test_multiscale_single_scale_equals_whole() -> None:
    model, x = ConvNet().eval(), torch.randn(2, 3, 17, 22)
    probs = infer_multiscale(model, x, scales=(1.0,), flip=False)
    assert torch.allclose(probs, model(x).softmax(1), atol=1e-6)
    assert torch.equal(inference(model, x, output="labels"), model(x).argmax(1))


def test_flip_exact_on_flip_symmetric_model() -> None:
    x = torch.randn(1, 3, 16, 21)
    symmetric = ConvNet(symmetric=True).eval()
    plain = infer_multiscale(symmetric, x, scales=(1.0,))
    assert torch.allclose(infer_multiscale(symmetric, x, scales=(1.0,), flip=True), plain, atol=1e-6)
    # and flip really runs the mirrored image: on an ordinary model the average changes
    model = ConvNet().eval()
    assert not torch.allclose(infer_multiscale(model, x, flip=True), infer_multiscale(model, x), atol=1e-4)


def test_multiscale_output_at_original_size_and_on_simplex() -> None:
    model, x = StridedNet().eval(), torch.randn(2, 3, 30, 41)
    probs = inference(model, x, scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75), flip=True)
    assert probs.shape == (2, 3, 30, 41)
    assert torch.allclose(probs.sum(1), torch.ones(2, 30, 41), atol=1e-5)
    # A constant image gives the same per-pixel scores at every scale and flip.
    pointwise = nn.Conv2d(3, 4, 1).eval()
    flat = torch.ones(1, 3, 12, 12) * torch.tensor([0.3, -1.0, 2.0]).view(1, 3, 1, 1)
    assert torch.allclose(
        inference(pointwise, flat, scales=(0.5, 2.0), flip=True), pointwise(flat).softmax(1), atol=1e-5
    )


def test_multiscale_with_slide() -> None:
    model, x = StridedNet().eval(), torch.randn(1, 3, 32, 48)
    probs = inference(model, x, mode="slide", crop=(16, 16), stride=(8, 8), scales=(1.0, 1.5), flip=True)
    assert probs.shape == (1, 3, 32, 48)
    assert torch.allclose(probs.sum(1), torch.ones(1, 32, 48), atol=1e-5)
    logits = inference(model, x, mode="slide", crop=16, output="logits")
    assert logits.shape == (1, 3, 32, 48)


def test_predict_api_and_crf_accept_modes() -> None:
    model = ConvNet().eval()
    image = torch.randint(0, 256, (3, 18, 24), dtype=torch.uint8)
    labels = semseg.predict(model, image, mode="slide", crop=(12, 12), stride=(6, 6), scales=[1.0, 0.5], flip=True)
    assert labels.shape == (18, 24) and labels.dtype == torch.int64
    refined = semseg.predict(model, image, mode="whole", scales=[1.0], flip=True, crf=True)
    assert refined.shape == (18, 24) and int(refined.max()) < 4
    # The CRF changes the prediction of this random net somewhere (it smooths by colour).
    plain = semseg.predict(model, image, mode="whole", scales=[1.0], flip=True)
    assert not torch.equal(refined, plain)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "tiles"}, InvalidOptionError, "mode"),
        ({"mode": "slide"}, InvalidOptionError, "crop"),
        ({"mode": "slide", "crop": (8, 8), "stride": (0, 4)}, InvalidOptionError, "stride"),
        ({"mode": "slide", "crop": (8, 8), "stride": -2}, InvalidOptionError, "stride"),
        ({"mode": "slide", "crop": (8, 8), "stride": (9, 4)}, InvalidOptionError, "larger than crop"),
        ({"mode": "slide", "crop": (0, 8)}, InvalidOptionError, "crop"),
        ({"mode": "slide", "crop": (8, 8, 8)}, InvalidOptionError, "crop"),
        ({"scales": (1.0, 0.0)}, InvalidOptionError, "scales"),
        ({"scales": ()}, InvalidOptionError, "scales"),
        ({"output": "masks"}, InvalidOptionError, "output"),
        ({"flip": True, "output": "logits"}, InvalidOptionError, "logits"),
    ],
)
def test_bad_options(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        inference(ConvNet().eval(), torch.randn(1, 3, 16, 16), **kwargs)


def test_bad_images() -> None:
    model = ConvNet().eval()
    with pytest.raises(DataError, match="N, 3, H, W"):
        inference(model, torch.randn(3, 16, 16))
    with pytest.raises(DataError, match="float"):
        inference(model, torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(DataError, match="3-channel"):
        inference(model, torch.randn(1, 4, 8, 8))
    with pytest.raises(DataError, match="num_classes"):
        infer_slide(model, torch.randn(1, 3, 8, 8), crop=4, num_classes=7)


def test_resizes_low_resolution_logits() -> None:
    model, x = StridedNet().eval(), torch.randn(1, 3, 24, 32)
    expected = F.interpolate(model(x), size=(24, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(infer_whole(model, x), expected)

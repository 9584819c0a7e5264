"""Pixel-wise cross-entropy and median-frequency weights, checked by hand on tiny examples."""

from __future__ import annotations

import math

import pytest
import torch

from semseg.data.statistics import class_statistics, median_frequency_weights
from semseg.errors import DataError
from semseg.losses import cross_entropy


def test_every_labelled_pixel_is_a_sample() -> None:
    # 1 image, 2 classes, 1x2 pixels; logits favour class 0 at both pixels.
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 0.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    nll0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    nll1 = -math.log(0.5)
    assert cross_entropy(logits, target).item() == pytest.approx((nll0 + nll1) / 2, rel=1e-6)


def test_ignored_pixels_are_left_out_and_all_ignored_gives_zero() -> None:
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, :2] = 255
    keep = target != 255
    manual = -torch.log_softmax(logits, 1).permute(0, 2, 3, 1)[keep].gather(1, target[keep][:, None]).mean()
    assert torch.allclose(cross_entropy(logits, target), manual)
    zero = cross_entropy(logits, torch.full((2, 4, 4), 255))
    assert zero.item() == 0.0
    zero.backward()
    assert logits.grad is not None


def test_class_weights_weighted_mean() -> None:
    logits = torch.zeros(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    w = torch.tensor([1.0, 3.0])
    # equal nll log(2) everywhere -> weighted mean is still log(2)
    assert cross_entropy(logits, target, w).item() == pytest.approx(math.log(2))
    logits[0, 0, 0, 0] = 5.0  # pixel 0 (class 0, weight 1) now almost right
    nll0 = -torch.log_softmax(logits, 1)[0, 0, 0, 0]
    expected = (1 * nll0 + 3 * math.log(2)) / 4
    assert cross_entropy(logits, target, w).item() == pytest.approx(float(expected), rel=1e-6)


def test_shape_mismatch_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="disagree"):
        cross_entropy(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, dtype=torch.long))


def test_median_frequency_by_hand() -> None:
    # image A (4 px): 3 x class0, 1 x class1; image B (4 px): 4 x class0; class 2 absent.
    masks = [torch.tensor([[0, 0], [0, 1]]), torch.tensor([[0, 0], [0, 0]])]
    class_px, image_px = class_statistics(masks, 3)
    assert class_px.tolist() == [7, 1, 0] and image_px.tolist() == [8, 4, 0]
    w = median_frequency_weights(class_px, image_px)
    freq0, freq1 = 7 / 8, 1 / 4
    median = min(freq0, freq1)  # torch.median of an even count returns the lower middle value
    assert w.tolist() == pytest.approx([median / freq0, median / freq1, 0.0])


def test_ignore_label_not_counted_in_statistics() -> None:
    class_px, _ = class_statistics([torch.tensor([[255, 1], [1, 1]])], 2)
    assert class_px.tolist() == [0, 3]


def test_median_frequency_on_real_camvid_ranks_like_segnet(camvid_root) -> None:  # type: ignore[no-untyped-def]
    """SegNet's published CamVid weights come from its own counts; ours, counted on this train
    split with the same definition, must agree on which classes are rare and which frequent."""
    from semseg.data.camvid import CamVid

    ds = CamVid(camvid_root, "train")
    w = median_frequency_weights(*class_statistics((ds.load_mask(m) for _, m in ds.pairs), 11)).tolist()
    segnet = [0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418, 0.6823, 6.2478, 7.3614]
    frequent, rare = {0, 1, 3, 5}, {2, 6, 9, 10}  # sky, building, road, tree / pole, sign, pedestrian, bicyclist
    assert all(w[c] < 0.5 and segnet[c] < 0.5 for c in frequent)
    assert all(w[c] > 3 and segnet[c] > 3 for c in rare)
    assert w[4] == pytest.approx(1.0)  # the median class (pavement) gets exactly 1


def test_losses_functional_imports_no_data() -> None:
    """The statistics moved to semseg.data.statistics: the losses neither export them nor import data."""
    import ast
    from pathlib import Path

    import semseg.losses
    import semseg.losses.functional as functional

    assert not hasattr(semseg.losses, "class_statistics") and not hasattr(semseg.losses, "median_frequency_weights")
    tree = ast.parse(Path(functional.__file__).read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m.startswith("semseg.data") for m in modules), modules

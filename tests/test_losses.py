"""The cross-entropy family (plain, label smoothing, OHEM, focal), the loss modules and their
registry, and median-frequency weights, checked by hand on tiny examples."""

from __future__ import annotations

import math

import pytest
import torch

from semseg.data.statistics import class_statistics, median_frequency_weights
from semseg.errors import DataError, InvalidOptionError
from semseg.losses import (
    LOSSES,
    CrossEntropyLoss,
    FocalLoss,
    OhemCrossEntropyLoss,
    cross_entropy,
    focal_loss,
    ohem_cross_entropy,
    ohem_mask,
)

LN2, LN3 = math.log(2.0), math.log(3.0)


def two_class_logits(*probs_of_class0: float) -> torch.Tensor:
    """``(1, 2, 1, P)`` logits ``[log p, log(1 - p)]`` per pixel: softmax gives back ``(p, 1 - p)``."""
    p = torch.tensor(probs_of_class0, dtype=torch.float64)
    return torch.stack([p.log(), (1 - p).log()])[None, :, None, :]


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


# --- label smoothing ---------------------------------------------------------------------------


def test_label_smoothing_by_hand() -> None:
    # Pixels: p = (1/2, 1/2) target 0; p = (3/4, 1/4) target 1; a third pixel ignored. eps = 0.2, C = 2:
    # the smoothed target is (1 - eps) * onehot + eps / C = 0.9 / 0.1.
    #   pixel 0: -(0.9 ln 1/2 + 0.1 ln 1/2) = ln 2
    #   pixel 1: -(0.1 ln 3/4 + 0.9 ln 1/4) = 0.1 ln(4/3) + 0.9 ln 4
    logits = two_class_logits(0.5, 0.75, 0.75)
    target = torch.tensor([[[0, 1, 255]]])
    expected = (LN2 + 0.1 * math.log(4 / 3) + 0.9 * math.log(4)) / 2
    assert cross_entropy(logits, target, label_smoothing=0.2).item() == pytest.approx(expected, rel=1e-12)
    # With class weights w = (1, 3), as torch defines it: (1 - eps) * weighted CE
    #   + eps / C * sum_i sum_c w_c (-ln p_ic) / sum_i w[y_i]
    #   weighted CE = (1 * ln 2 + 3 * ln 4) / 4
    #   smoothing sum: pixel 0: (1 + 3) ln 2; pixel 1: 1 * ln(4/3) + 3 * ln 4; over sum w[y] = 4
    w = torch.tensor([1.0, 3.0], dtype=torch.float64)
    expected = 0.8 * (LN2 + 3 * math.log(4)) / 4 + 0.1 * (4 * LN2 + math.log(4 / 3) + 3 * math.log(4)) / 4
    assert cross_entropy(logits, target, w, label_smoothing=0.2).item() == pytest.approx(expected, rel=1e-12)
    # eps = 0 is plain cross-entropy, bit for bit.
    assert torch.equal(cross_entropy(logits, target, w, label_smoothing=0.0), cross_entropy(logits, target, w))


def test_label_smoothing_range() -> None:
    for bad in (-0.1, 1.0, float("nan"), "0.1"):
        with pytest.raises(InvalidOptionError, match="label_smoothing"):
            cross_entropy(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long), label_smoothing=bad)  # type: ignore[arg-type]


# --- OHEM --------------------------------------------------------------------------------------


def test_ohem_by_hand() -> None:
    # True-class probabilities: pixel a 0.9 (class 0), b 0.5 (class 1), c 0.8 (class 0); pixel d is
    # ignored although its true-class probability (0.01) would make it the hardest.
    logits = two_class_logits(0.9, 0.5, 0.8, 0.99)
    target = torch.tensor([[[0, 1, 0, 1]]])
    target[0, 0, 3] = 255
    nll_a, nll_b, nll_c = math.log(1 / 0.9), LN2, math.log(1 / 0.8)
    # thresh 0.7, min_kept 0: only b (0.5 < 0.7).
    assert ohem_mask(logits, target, thresh=0.7, min_kept=0).tolist() == [[[False, True, False, False]]]
    assert ohem_cross_entropy(logits, target, thresh=0.7, min_kept=0).item() == pytest.approx(nll_b)
    # min_kept 2: one pixel below thresh is too few, so the 2 hardest: b (0.5) then c (0.8).
    assert ohem_mask(logits, target, thresh=0.7, min_kept=2).tolist() == [[[False, True, True, False]]]
    assert ohem_cross_entropy(logits, target, thresh=0.7, min_kept=2).item() == pytest.approx((nll_b + nll_c) / 2)
    # thresh 0.85: b and c are below it.
    assert ohem_cross_entropy(logits, target, thresh=0.85, min_kept=1).item() == pytest.approx((nll_b + nll_c) / 2)
    # min_kept larger than the 3 labelled pixels: all of them, never the ignored one.
    assert ohem_mask(logits, target, thresh=0.7, min_kept=100).tolist() == [[[True, True, True, False]]]
    assert ohem_cross_entropy(logits, target, thresh=0.7, min_kept=100).item() == pytest.approx(
        (nll_a + nll_b + nll_c) / 3
    )
    # Class weights (2, 1), kept b (class 1) and c (class 0): (1 * ln 2 + 2 * ln 1.25) / (1 + 2).
    w = torch.tensor([2.0, 1.0], dtype=torch.float64)
    expected = (1 * nll_b + 2 * nll_c) / 3
    assert ohem_cross_entropy(logits, target, w, thresh=0.7, min_kept=2).item() == pytest.approx(expected)


def test_ohem_all_ignored_and_bad_options() -> None:
    logits = torch.zeros(1, 2, 2, 2, requires_grad=True)
    zero = ohem_cross_entropy(logits, torch.full((1, 2, 2), 255))
    assert zero.item() == 0.0
    zero.backward()
    assert logits.grad is not None
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    # Nothing below thresh and min_kept 0: no pixel kept, loss 0.
    assert ohem_cross_entropy(torch.zeros(1, 2, 2, 2), target, thresh=0.1, min_kept=0).item() == 0.0
    with pytest.raises(InvalidOptionError, match="thresh"):
        ohem_cross_entropy(logits, target, thresh=0.0)
    with pytest.raises(InvalidOptionError, match="min_kept"):
        ohem_cross_entropy(logits, target, min_kept=-1)
    with pytest.raises(InvalidOptionError, match="min_kept"):
        OhemCrossEntropyLoss(min_kept=1.5)  # type: ignore[arg-type]


# --- focal -------------------------------------------------------------------------------------


def test_focal_by_hand() -> None:
    # Pixel a: p = 3/4 for its class 0 -> (1/4)^2 * ln(4/3); pixel b: p = 1/2 (class 1) -> (1/2)^2 * ln 2;
    # pixel c ignored.
    logits = two_class_logits(0.75, 0.5, 0.1)
    target = torch.tensor([[[0, 1, 255]]])
    fl_a, fl_b = math.log(4 / 3) / 16, LN2 / 4
    assert focal_loss(logits, target).item() == pytest.approx((fl_a + fl_b) / 2, rel=1e-12)
    # gamma 1: (1/4) ln(4/3) and (1/2) ln 2.
    assert focal_loss(logits, target, gamma=1.0).item() == pytest.approx((math.log(4 / 3) / 4 + LN2 / 2) / 2)
    # alpha = class weights (1, 3): (1 * fl_a + 3 * fl_b) / (1 + 3).
    w = torch.tensor([1.0, 3.0], dtype=torch.float64)
    assert focal_loss(logits, target, w).item() == pytest.approx((fl_a + 3 * fl_b) / 4, rel=1e-12)


def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    logits = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 3, 3))
    target[1, 0] = 255
    w = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    assert torch.allclose(focal_loss(logits, target, gamma=0.0), cross_entropy(logits, target))
    assert torch.allclose(focal_loss(logits, target, w, gamma=0.0), cross_entropy(logits, target, w))
    assert focal_loss(logits, torch.full((2, 3, 3), 255)).item() == 0.0
    with pytest.raises(InvalidOptionError, match="gamma"):
        FocalLoss(gamma=-1.0)


# --- gradients ---------------------------------------------------------------------------------


def _tiny_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    logits = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 3, 3))
    target[0, 0, :2] = 255
    return logits, target, torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)


@pytest.mark.parametrize(
    "loss",
    [
        lambda x, t, w: cross_entropy(x, t, w),
        lambda x, t, w: cross_entropy(x, t, w, label_smoothing=0.1),
        lambda x, t, w: ohem_cross_entropy(x, t, w, thresh=0.7, min_kept=5),
        lambda x, t, w: focal_loss(x, t, w, gamma=2.0),
        lambda x, t, w: focal_loss(x, t, None, gamma=0.5),
    ],
    ids=["ce", "ce_smoothing", "ohem", "focal", "focal_gamma_half"],
)
def test_gradcheck(loss) -> None:  # type: ignore[no-untyped-def]
    logits, target, w = _tiny_batch()
    assert torch.autograd.gradcheck(lambda x: loss(x, target, w), (logits,))


# --- modules and the registry ------------------------------------------------------------------


def test_modules_match_their_functions() -> None:
    logits, target, w = _tiny_batch()
    assert torch.equal(
        CrossEntropyLoss(w, label_smoothing=0.1)(logits, target),
        cross_entropy(logits, target, w.float(), label_smoothing=0.1),
    )
    assert torch.equal(
        OhemCrossEntropyLoss(w, thresh=0.6, min_kept=4)(logits, target),
        ohem_cross_entropy(logits, target, w.float(), 255, 0.6, 4),
    )
    assert torch.equal(FocalLoss(w, gamma=1.5)(logits, target), focal_loss(logits, target, w.float(), gamma=1.5))
    assert CrossEntropyLoss(w).weight.dtype == torch.float32  # a buffer: .to(device) moves it
    assert "weight" in dict(FocalLoss(w).named_buffers())


def test_config_table_matches_the_losses() -> None:
    """config.py (which may not import losses) repeats each loss's options for validation."""
    import inspect

    from semseg.config import LOSS_OPTIONS, Config
    from semseg.losses import DEFAULT_LOSS

    assert LOSS_OPTIONS == {name: cls.options for name, cls in LOSSES.items()}
    for name, cls in LOSSES.items():
        params = set(inspect.signature(cls).parameters) - {"weight", "ignore_index"}
        assert params == set(cls.options), name
        assert ("weight" in inspect.signature(cls).parameters) == cls.takes_class_weights, name
    assert Config().train.loss == list(DEFAULT_LOSS)

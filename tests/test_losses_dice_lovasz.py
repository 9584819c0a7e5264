"""Dice and Lovasz losses, checked by hand on tiny examples, with gradient checks."""

from __future__ import annotations

import math

import pytest
import torch

from semseg.errors import DataError, InvalidOptionError
from semseg.losses import DiceLoss, LovaszLoss, dice_loss, lovasz_hinge, lovasz_jaccard_gradient, lovasz_softmax


def logits_of(*probs: tuple[float, ...]) -> torch.Tensor:
    """``(1, C, 1, P)`` float64 logits ``log p`` per pixel: softmax gives back ``p``."""
    return torch.tensor(probs, dtype=torch.float64).log().T[None, :, None, :]


# --- Dice --------------------------------------------------------------------------------------


def test_dice_by_hand() -> None:
    # Softmax probabilities and targets (pixel d ignored; its probabilities count nowhere):
    #   a (3/4, 1/4) -> 0;  b (1/2, 1/2) -> 1;  c (1/4, 3/4) -> 0;  d (3/4, 1/4) -> ignored
    # class 0: I = 3/4 + 1/4 = 1, sum p = 3/4 + 1/2 + 1/4 = 3/2, sum t = 2
    # class 1: I = 1/2,           sum p = 1/4 + 1/2 + 3/4 = 3/2, sum t = 1
    logits = logits_of((0.75, 0.25), (0.5, 0.5), (0.25, 0.75), (0.75, 0.25))
    target = torch.tensor([[[0, 1, 0, 255]]])
    # smooth 1: Dice_0 = (2 + 1) / (3/2 + 2 + 1) = 2/3; Dice_1 = (1 + 1) / (3/2 + 1 + 1) = 4/7
    # loss = ((1 - 2/3) + (1 - 4/7)) / 2 = (1/3 + 3/7) / 2 = 8/21
    assert dice_loss(logits, target).item() == pytest.approx(8 / 21, rel=1e-12)
    # smooth 0: Dice_0 = 2 / (7/2) = 4/7; Dice_1 = 1 / (5/2) = 2/5 -> (3/7 + 3/5) / 2 = 18/35
    assert dice_loss(logits, target, smooth=0.0).item() == pytest.approx(18 / 35, rel=1e-12)


def test_dice_present_or_all_classes() -> None:
    # 3 classes, class 2 absent: a (1/2, 1/4, 1/4) -> 0; b (1/4, 1/2, 1/4) -> 1; c ignored.
    # class 0: I = 1/2, sum p = 3/4, sum t = 1 -> Dice = (1 + 1) / (3/4 + 1 + 1) = 8/11 -> loss 3/11
    # class 1: the same by symmetry -> 3/11
    # class 2: I = 0, sum p = 1/2, sum t = 0 -> Dice = 1 / (1/2 + 1) = 2/3 -> loss 1/3
    logits = logits_of((0.5, 0.25, 0.25), (0.25, 0.5, 0.25), (0.2, 0.3, 0.5))
    target = torch.tensor([[[0, 1, 255]]])
    assert dice_loss(logits, target, classes="present").item() == pytest.approx(3 / 11, rel=1e-12)
    assert dice_loss(logits, target, classes="all").item() == pytest.approx((3 / 11 + 3 / 11 + 1 / 3) / 3, rel=1e-12)
    with pytest.raises(InvalidOptionError, match="classes"):
        dice_loss(logits, target, classes="some")
    with pytest.raises(InvalidOptionError, match="smooth"):
        DiceLoss(smooth=-1.0)


def test_binary_dice_by_hand() -> None:
    # One logit channel, sigmoid: p = 3/4, 1/2, 1/4, (ignored); targets 1, 0, 0, 255.
    # I = 3/4, sum p = 3/4 + 1/2 + 1/4 = 3/2, sum t = 1 -> Dice = (3/2 + 1) / (3/2 + 1 + 1) = 5/7 -> loss 2/7
    logits = torch.tensor([[[[math.log(3), 0.0], [-math.log(3), 5.0]]]], dtype=torch.float64)
    target = torch.tensor([[[1, 0], [0, 255]]])
    assert dice_loss(logits, target).item() == pytest.approx(2 / 7, rel=1e-12)
    assert DiceLoss()(logits, target).item() == pytest.approx(2 / 7, rel=1e-12)
    with pytest.raises(DataError, match="0, 1"):
        dice_loss(logits, torch.tensor([[[1, 2], [0, 255]]]))


def test_dice_all_ignored_is_zero() -> None:
    for c in (1, 3):
        logits = torch.randn(1, c, 2, 2, requires_grad=True)
        zero = dice_loss(logits, torch.full((1, 2, 2), 255), smooth=0.0)
        assert zero.item() == 0.0
        zero.backward()
        assert logits.grad is not None


# --- Lovasz ------------------------------------------------------------------------------------


def test_jaccard_gradient_by_hand() -> None:
    # fg sorted by error = [1, 0, 1], 2 foreground pixels. Mispredicting the first k:
    #   k=1: 1 - |TP| / |union| = 1 - 1/2;  k=2: 1 - 1/3;  k=3: 1 - 0/3  -> Delta = 1/2, 2/3, 1
    #   g = differences = 1/2, 1/6, 1/3
    # An absent class (no foreground): Delta = 1 at every k -> g = 1, 0, 0.
    fg = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[1 / 2, 1.0], [1 / 6, 0.0], [1 / 3, 0.0]], dtype=torch.float64)
    assert torch.allclose(lovasz_jaccard_gradient(fg), expected)


def test_lovasz_softmax_by_hand() -> None:
    # p(class 0): a 0.9 (-> 0), b 0.3 (-> 1), c 0.4 (-> 0), d ignored.
    # class 0: fg = [1, 0, 1], errors |fg - p0| = a 0.1, b 0.3, c 0.6; sorted c, b, a -> fg [1, 0, 1]
    #   g = [1/2, 1/6, 1/3] (above) -> 0.6/2 + 0.3/6 + 0.1/3 = 23/60
    # class 1: fg = [0, 1, 0], errors |fg - p1| = a 0.1, b 0.3, c 0.6; sorted c, b, a -> fg [0, 1, 0]
    #   Delta: k=1 1 - 1/2; k=2 1 - 0/2; k=3 1 - 0/3 -> g = [1/2, 1/2, 0] -> 0.6/2 + 0.3/2 = 27/60
    # mean over the 2 present classes: 50/120 = 5/12
    logits = logits_of((0.9, 0.1), (0.3, 0.7), (0.4, 0.6), (0.01, 0.99))
    target = torch.tensor([[[0, 1, 0, 255]]])
    assert lovasz_softmax(logits, target).item() == pytest.approx(5 / 12, rel=1e-12)
    assert LovaszLoss()(logits, target).item() == pytest.approx(5 / 12, rel=1e-12)


def test_lovasz_softmax_present_or_all_classes() -> None:
    # 3 classes: a (0.6, 0.3, 0.1) -> 0; b (0.2, 0.5, 0.3) -> 1; c ignored. With 1 foreground pixel
    # of 2, Delta = 1 from the first mistake on: g = [1, 0], so each class scores its largest error.
    # class 0: errors a 0.4, b 0.2 -> 0.4;  class 1: a 0.3, b 0.5 -> 0.5;  class 2 (absent): a 0.1, b 0.3 -> 0.3
    logits = logits_of((0.6, 0.3, 0.1), (0.2, 0.5, 0.3), (0.1, 0.1, 0.8))
    target = torch.tensor([[[0, 1, 255]]])
    assert lovasz_softmax(logits, target, classes="present").item() == pytest.approx((0.4 + 0.5) / 2, rel=1e-12)
    assert lovasz_softmax(logits, target, classes="all").item() == pytest.approx((0.4 + 0.5 + 0.3) / 3, rel=1e-12)
    with pytest.raises(InvalidOptionError, match="classes"):
        LovaszLoss(classes=[0, 1])  # type: ignore[arg-type]


def test_lovasz_softmax_per_image_and_all_ignored() -> None:
    logits = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    target = torch.randint(0, 4, (3, 3, 3))
    target[2] = 255  # an image without labels is left out of the per-image mean
    per_image = lovasz_softmax(logits, target, per_image=True)
    expected = (lovasz_softmax(logits[:1], target[:1]) + lovasz_softmax(logits[1:2], target[1:2])) / 2
    assert per_image.item() == pytest.approx(expected.item(), rel=1e-12)
    assert lovasz_softmax(logits, torch.full((3, 3, 3), 255)).item() == 0.0
    with pytest.raises(InvalidOptionError, match="per_image"):
        lovasz_softmax(logits, target, per_image="yes")  # type: ignore[arg-type]


def test_lovasz_hinge_by_hand() -> None:
    # Logits 2.0 (-> 1), -0.5 (-> 0), 0.2 (-> 0), ignored. Hinge errors 1 - s * logit with s = 2y - 1:
    #   a 1 - 2 = -1 (-> relu 0), b 1 - 0.5 = 0.5, c 1 + 0.2 = 1.2; sorted c, b, a -> fg [0, 0, 1]
    #   Delta: k=1 1 - 1/2; k=2 1 - 1/3; k=3 1 - 0/3 -> g = [1/2, 1/6, 1/3]
    #   loss = 1.2/2 + 0.5/6 + 0 = 41/60
    logits = torch.tensor([[[[2.0, -0.5], [0.2, 9.0]]]], dtype=torch.float64)
    target = torch.tensor([[[1, 0], [0, 255]]])
    assert lovasz_hinge(logits, target).item() == pytest.approx(41 / 60, rel=1e-12)
    assert LovaszLoss()(logits, target).item() == pytest.approx(41 / 60, rel=1e-12)  # binary logits -> hinge
    # per image: image 2 alone has fg [1] with error 1 - 1 * 0.5 = 0.5, g = [1] -> 0.5
    two = torch.cat([logits, torch.full((1, 1, 2, 2), 0.5, dtype=torch.float64)])
    target2 = torch.cat([target, torch.tensor([[[1, 255], [255, 255]]])])
    assert lovasz_hinge(two, target2, per_image=True).item() == pytest.approx((41 / 60 + 0.5) / 2, rel=1e-12)
    with pytest.raises(DataError, match="0, 1"):
        lovasz_hinge(logits, torch.tensor([[[1, 3], [0, 255]]]))
    with pytest.raises(DataError, match=r"\(N, 1, H, W\)"):
        lovasz_hinge(torch.zeros(1, 2, 2, 2), target)
    zero = lovasz_hinge(logits.requires_grad_(), torch.full((1, 2, 2), 255))
    assert zero.item() == 0.0


# --- gradients ---------------------------------------------------------------------------------


def test_dice_gradcheck() -> None:
    logits = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 3, 3))
    target[0, 0] = 255
    for classes in ("present", "all"):
        assert torch.autograd.gradcheck(lambda x, c=classes: dice_loss(x, target, classes=c), (logits,))
    binary = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: dice_loss(x, target.clamp(max=1).masked_fill(target == 255, 255)), (binary,)
    )


def test_lovasz_gradcheck_without_ties() -> None:
    # Random logits: no two errors of a class tie and no hinge error is 0 (almost surely), where
    # the piecewise-linear loss has a gradient.
    logits = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 3, 3))
    target[0, 0] = 255
    for per_image in (False, True):
        assert torch.autograd.gradcheck(lambda x, p=per_image: lovasz_softmax(x, target, per_image=p), (logits,))
    binary = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    fg = target.clamp(max=1).masked_fill(target == 255, 255)
    assert torch.autograd.gradcheck(lambda x: lovasz_hinge(x, fg), (binary,))


def test_lovasz_extension_equals_the_jaccard_loss_on_sets() -> None:
    """At 0/1 errors (the indicator of a set M of mispredicted pixels) the Lovasz extension is the
    Jaccard loss itself: 1 - |F minus M| / |F union M|. Hinge errors are 1 at logit 0 and 0 at
    logit = s."""
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        fg = torch.randint(0, 2, (1, 2, 3), generator=gen)
        wrong = torch.randint(0, 2, (1, 2, 3), generator=gen).bool()
        logits = torch.where(wrong, 0.0, 2.0 * fg - 1.0).double()[:, None]
        f, m = fg.bool(), wrong
        union = int((f | m).sum())
        expected = 0.0 if union == 0 else 1 - int((f & ~m).sum()) / union
        assert lovasz_hinge(logits, fg).item() == pytest.approx(expected, abs=1e-12)


def test_lovasz_max_pixels_samples_without_changing_the_small_case() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 16, 16, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 4, (2, 16, 16))
    target[0, :2] = 255
    exact = lovasz_softmax(logits, target)
    # a cap at or above the labelled count is the exact loss
    assert lovasz_softmax(logits, target, max_pixels=int((target != 255).sum())).item() == exact.item()
    # a sample is seeded by torch's generator, so the same seed draws the same pixels
    torch.manual_seed(1)
    first = lovasz_softmax(logits, target, max_pixels=100)
    torch.manual_seed(1)
    assert lovasz_softmax(logits, target, max_pixels=100).item() == first.item()
    assert first.item() != exact.item()
    # the sampled loss estimates the exact one: the mean of many draws lands close
    draws = torch.stack([lovasz_softmax(logits, target, max_pixels=200) for _ in range(200)])
    assert abs(draws.mean().item() - exact.item()) < 0.05 * exact.item()
    first.backward()
    assert (logits.grad != 0).sum() > 0
    binary = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    mask = torch.randint(0, 2, (1, 8, 8))
    assert lovasz_hinge(binary, mask, max_pixels=64).item() == lovasz_hinge(binary, mask).item()
    assert torch.isfinite(LovaszLoss(max_pixels=10)(binary, mask))
    for bad in (0, -3, 2.5, True, "all"):
        with pytest.raises(InvalidOptionError, match="max_pixels"):
            LovaszLoss(max_pixels=bad)  # type: ignore[arg-type]

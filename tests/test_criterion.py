"""SegmentationCriterion and se_target: values worked out by hand on tiny examples."""

from __future__ import annotations

import math

import pytest
import torch

from semseg.errors import DataError, InvalidOptionError
from semseg.losses.criterion import SegmentationCriterion, se_target

LN2 = math.log(2.0)


def test_se_target_from_mask() -> None:
    mask = torch.tensor([[[0, 2], [255, 2]], [[255, 255], [255, 255]], [[3, 3], [1, 0]]])
    expected = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
    assert torch.equal(se_target(mask, 4), expected)
    # A custom ignore label is not counted; 255 is then a real (out-of-range) id.
    assert torch.equal(se_target(torch.tensor([[[0, 1]]]), 2, ignore_index=1), torch.tensor([[1.0, 0.0]]))


def test_se_target_rejects_bad_masks() -> None:
    with pytest.raises(DataError, match=r"0\.\.3"):
        se_target(torch.tensor([[[0, 4]]]), 4)
    with pytest.raises(DataError, match="N, H, W"):
        se_target(torch.zeros(2, 2, dtype=torch.long), 4)


def test_main_term_by_hand() -> None:
    crit = SegmentationCriterion(num_classes=2)
    logits = torch.zeros(1, 2, 1, 3)  # equal scores: -log(1/2) per pixel
    target = torch.tensor([[[0, 1, 255]]])
    loss, terms = crit(logits, target)
    assert loss.item() == pytest.approx(LN2)
    assert terms == {"main": pytest.approx(LN2), "loss": pytest.approx(LN2)}


def test_class_weights_by_hand() -> None:
    # Pixel 0 (class 0) has p = 1/2; pixel 1 (class 1) has p = e^2 / (1 + e^2).
    logits = torch.tensor([[[[0.0, 0.0]], [[0.0, 2.0]]]])
    target = torch.tensor([[[0, 1]]])
    nll0, nll1 = LN2, math.log1p(math.exp(-2.0))
    crit = SegmentationCriterion(num_classes=2, class_weights=torch.tensor([1.0, 3.0]))
    loss, _ = crit(logits, target)
    assert loss.item() == pytest.approx((1 * nll0 + 3 * nll1) / 4, rel=1e-5)
    assert "class_weights" in dict(crit.named_buffers())
    with pytest.raises(InvalidOptionError, match="class_weights"):
        SegmentationCriterion(num_classes=3, class_weights=torch.ones(2))


def test_sum_of_main_aux_and_se_terms() -> None:
    target = torch.tensor([[[0, 2], [2, 255]]])  # present: classes 0 and 2 of 3
    main = torch.zeros(1, 3, 2, 2, requires_grad=True)  # CE = ln 3
    aux = torch.zeros(1, 3, 2, 2, requires_grad=True)
    se = torch.tensor([[2.0, -1.0, 0.5]], requires_grad=True)
    loss, terms = SegmentationCriterion(num_classes=3)(main, target, {"aux": aux, "se": se})

    def bce(z: float, y: float) -> float:
        return -(y * math.log(1 / (1 + math.exp(-z))) + (1 - y) * math.log(1 - 1 / (1 + math.exp(-z))))

    se_expected = (bce(2.0, 1) + bce(-1.0, 0) + bce(0.5, 1)) / 3
    assert terms["main"] == pytest.approx(math.log(3))
    assert terms["aux"] == pytest.approx(math.log(3))
    assert terms["se"] == pytest.approx(se_expected, rel=1e-5)
    assert loss.item() == pytest.approx(math.log(3) * 1.4 + 0.2 * se_expected, rel=1e-5)
    assert terms["loss"] == pytest.approx(loss.item())
    loss.backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (main, aux, se))


def test_weights_are_applied() -> None:
    target = torch.tensor([[[0, 1]]])
    logits, aux = torch.zeros(1, 2, 1, 2), {"aux": torch.zeros(1, 2, 1, 2), "se": torch.zeros(1, 2)}
    loss, _ = SegmentationCriterion(num_classes=2, aux_weight=1.0, se_weight=0.5)(logits, target, aux)
    assert loss.item() == pytest.approx(LN2 * (1 + 1 + 0.5))
    loss, terms = SegmentationCriterion(num_classes=2, aux_weight=0.0, se_weight=0.0)(logits, target, aux)
    assert loss.item() == pytest.approx(LN2) and set(terms) == {"main", "aux", "se", "loss"}


def test_bad_aux_outputs_and_options() -> None:
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    crit = SegmentationCriterion(num_classes=2)
    with pytest.raises(DataError, match="'odd'"):
        crit(torch.zeros(1, 2, 2, 2), target, {"odd": torch.zeros(1, 2, 2)})
    with pytest.raises(DataError, match="classes"):
        crit(torch.zeros(1, 2, 2, 2), target, {"se": torch.zeros(1, 5)})
    with pytest.raises(InvalidOptionError, match="aux_weight"):
        SegmentationCriterion(num_classes=2, aux_weight=-1.0)


def test_criterion_on_encnet_output() -> None:
    from semseg import create_model

    model = create_model("encnet_resnet50", num_classes=4, aux_loss=True, deep_stem=False)
    target = torch.randint(0, 4, (2, 32, 32))
    target[0, :8] = 255
    out = model(torch.randn(2, 3, 32, 32), return_aux=True)
    loss, terms = SegmentationCriterion(num_classes=4)(out.logits, target, out.aux)
    assert set(terms) == {"main", "aux", "se", "loss"}
    assert math.isfinite(loss.item())
    loss.backward()
    assert model.head.se_classifier.weight.grad is not None

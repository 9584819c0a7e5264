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
    assert "pixel_loss.losses.0.weight" in dict(crit.named_buffers())  # moves with criterion.to(device)
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


def test_combined_loss_terms_are_reported_by_name() -> None:
    # 2 classes, equal logits everywhere, targets 0, 1 and one ignored pixel:
    #   CE = ln 2 at every labelled pixel.
    #   Lovasz-softmax: every error is 1/2, so each class scores 1/2 * sum_k g_k = 1/2 * Delta(all
    #   pixels mispredicted) = 1/2 * 1, whatever order the ties take -> 1/2.
    #   main = 1.0 * ln 2 + 0.5 * 1/2; aux gets the same pixel loss: aux = main.
    target = torch.tensor([[[0, 1, 255]]])
    logits, aux = torch.zeros(1, 2, 1, 3), torch.zeros(1, 2, 1, 3)
    spec = [{"name": "ce", "weight": 1.0}, {"name": "lovasz", "weight": 0.5}]
    loss, terms = SegmentationCriterion(num_classes=2, loss=spec)(logits, target, {"aux": aux})
    main = LN2 + 0.5 * 0.5
    assert set(terms) == {"main", "main.ce", "main.lovasz", "aux", "aux.ce", "aux.lovasz", "loss"}
    assert terms["main.ce"] == pytest.approx(LN2) and terms["main.lovasz"] == pytest.approx(0.5)
    assert terms["main"] == pytest.approx(main) and terms["aux"] == pytest.approx(main)
    assert loss.item() == pytest.approx(main * 1.4)
    # One term: the log keys stay as they were.
    _, terms = SegmentationCriterion(num_classes=2, loss=[{"name": "lovasz"}])(logits, target, {"aux": aux})
    assert set(terms) == {"main", "aux", "loss"} and terms["main"] == pytest.approx(0.5)


def test_class_weights_go_to_the_terms_that_take_them() -> None:
    w = torch.tensor([1.0, 3.0])
    spec = [{"name": n} for n in ("ce", "ohem", "focal", "dice", "lovasz", "ce")]
    crit = SegmentationCriterion(num_classes=2, class_weights=w, loss=spec)
    weights = {
        name: getattr(m, "weight", None) for name, m in zip(crit.pixel_loss.names, crit.pixel_loss.losses, strict=True)
    }
    assert list(weights) == ["ce", "ohem", "focal", "dice", "lovasz", "ce_2"]
    assert all(torch.equal(weights[n], w) for n in ("ce", "ohem", "focal", "ce_2"))
    assert weights["dice"] is None and weights["lovasz"] is None


def test_bad_loss_spec_names_the_term() -> None:
    with pytest.raises(
        InvalidOptionError, match=r"loss term 1: unknown loss 'iou'; allowed: ce, ohem, focal, dice, lovasz"
    ):
        SegmentationCriterion(num_classes=2, loss=[{"name": "ce"}, {"name": "iou"}])
    with pytest.raises(
        InvalidOptionError, match=r"loss term 0 \(ce\): unknown option gamma; allowed: name, weight, label_smoothing"
    ):
        SegmentationCriterion(num_classes=2, loss=[{"name": "ce", "gamma": 2}])
    with pytest.raises(InvalidOptionError, match=r"loss term 0 \(ohem\): thresh=2"):
        SegmentationCriterion(num_classes=2, loss=[{"name": "ohem", "thresh": 2}])
    with pytest.raises(InvalidOptionError, match="weight='1'"):
        SegmentationCriterion(num_classes=2, loss=[{"name": "ce", "weight": "1"}])


def _old_criterion(logits, target, aux, weight):  # type: ignore[no-untyped-def]
    """The criterion as it was before train.loss: CE main + 0.4 x CE aux + 0.2 x BCE SE."""
    import torch.nn.functional as F

    main = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=255)
    total = main + 0.4 * F.cross_entropy(aux["aux"].float(), target, weight=weight, ignore_index=255)
    return total + 0.2 * F.binary_cross_entropy_with_logits(aux["se"].float(), se_target(target, 4))


@pytest.mark.parametrize("class_weights", [None, [0.5, 1.0, 2.0, 4.0]])
def test_default_config_gives_the_old_criterion_exactly(class_weights) -> None:  # type: ignore[no-untyped-def]
    """The sample job is unchanged: the default train.loss is the old cross-entropy, bit for bit."""
    from semseg.config import Config
    from semseg.engine.loss import build_criterion

    cfg = Config()
    cfg.train.class_weights = class_weights
    crit = build_criterion(cfg, None, 4, torch.device("cpu"))  # type: ignore[arg-type]  # no statistics needed
    target = torch.randint(0, 4, (2, 8, 8))
    target[0, :3] = 255
    logits, aux = torch.randn(2, 4, 8, 8), {"aux": torch.randn(2, 4, 8, 8), "se": torch.randn(2, 4)}
    weight = None if class_weights is None else torch.tensor(class_weights)
    loss, terms = crit(logits, target, aux)
    assert torch.equal(loss, _old_criterion(logits, target, aux, weight))
    assert set(terms) == {"main", "aux", "se", "loss"}


def test_build_criterion_reports_bad_option_values_as_config_errors() -> None:
    from semseg.config import Config
    from semseg.engine.loss import build_criterion
    from semseg.errors import ConfigError

    cfg = Config()
    cfg.train.loss = [{"name": "ce"}, {"name": "ohem", "thresh": 1.5}]
    with pytest.raises(
        ConfigError, match=r"train\.loss: loss term 1 \(ohem\): thresh=1\.5; expected a number in \(0, 1\]"
    ):
        build_criterion(cfg, None, 2, torch.device("cpu"))  # type: ignore[arg-type]
    cfg.train.loss = [{"name": "lovasz", "classes": "some"}, {"name": "ce", "label_smoothing": 0.1}]
    with pytest.raises(ConfigError, match="classes='some'; expected present or all"):
        build_criterion(cfg, None, 2, torch.device("cpu"))  # type: ignore[arg-type]

"""Binary (one-channel, sigmoid) models: the bce loss and the losses a one-channel model may use."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semseg.errors import InvalidOptionError
from semseg.losses import BCELoss, binary_cross_entropy, build_pixel_loss
from semseg.losses.criterion import SegmentationCriterion


def test_bce_matches_torch_and_ignores() -> None:
    logits = torch.randn(2, 1, 5, 6)
    target = torch.randint(0, 2, (2, 5, 6))
    target[0, :2] = 255
    keep = target != 255
    expected = F.binary_cross_entropy_with_logits(logits[:, 0][keep], target[keep].float())
    torch.testing.assert_close(binary_cross_entropy(logits, target), expected)
    weighted = F.binary_cross_entropy_with_logits(
        logits[:, 0][keep], target[keep].float(), pos_weight=torch.tensor(3.0)
    )
    torch.testing.assert_close(BCELoss(pos_weight=3.0)(logits, target), weighted)
    all_ignored = torch.full_like(target, 255)
    zero = binary_cross_entropy(logits.requires_grad_(), all_ignored)
    assert float(zero) == 0.0 and zero.requires_grad


def test_binary_default_and_allowed_losses() -> None:
    assert SegmentationCriterion(1).pixel_loss.names == ["bce"]
    assert SegmentationCriterion(1, loss=[{"name": "ce", "weight": 1.0}]).pixel_loss.names == ["bce"]
    loss = build_pixel_loss([{"name": "bce", "pos_weight": 2}, {"name": "dice"}, {"name": "lovasz"}], num_classes=1)
    value, parts = loss(torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 8, 8)))
    assert set(parts) == {"bce", "dice", "lovasz"} and torch.isfinite(value)
    for name in ("ce", "ohem", "focal"):
        with pytest.raises(InvalidOptionError, match="use dice, lovasz, bce"):
            build_pixel_loss([{"name": name}], num_classes=1)
    with pytest.raises(InvalidOptionError, match="one-channel"):
        build_pixel_loss([{"name": "bce"}], num_classes=3)
    with pytest.raises(InvalidOptionError, match="pos_weight"):
        build_pixel_loss([{"name": "bce", "pos_weight": 0}], num_classes=1)

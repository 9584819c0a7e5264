"""train.loss in the config: the default, the list form, overrides, and clear errors."""

from __future__ import annotations

import pytest

from semseg.config import Config, apply_overrides, from_dict
from semseg.errors import ConfigError


def test_default_is_plain_cross_entropy() -> None:
    assert Config().train.loss == [{"name": "ce", "weight": 1.0}]
    assert Config().train.loss is not Config().train.loss  # no shared mutable default


def test_list_of_terms_with_options() -> None:
    terms = [
        {"name": "ohem", "weight": 1.0, "thresh": 0.7, "min_kept": 100000},
        {"name": "ce", "label_smoothing": 0.1},
        {"name": "lovasz", "weight": 0.5, "classes": "all", "per_image": True},
        {"name": "dice", "weight": 0, "smooth": 1.0},
        {"name": "focal", "gamma": 2},
    ]
    assert from_dict({"train": {"loss": terms}}).train.loss == terms
    cfg = apply_overrides(Config(), ["train.loss=[{name: ce, weight: 1.0}, {name: lovasz, weight: 0.5}]"])
    assert cfg.train.loss == [{"name": "ce", "weight": 1.0}, {"name": "lovasz", "weight": 0.5}]


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        ([{"name": "iou"}], r"train\.loss\[0\]\.name='iou'; allowed: ce, ohem, focal, dice, lovasz"),
        ([{"weight": 1.0}], r"train\.loss\[0\]\.name=None; allowed: ce, ohem, focal, dice, lovasz"),
        (
            [{"name": "ce"}, {"name": "dice", "weight": "half"}],
            r"train\.loss\[1\]\.weight='half' \(dice\); expected a number >= 0",
        ),
        ([{"name": "ce", "weight": -1}], r"weight=-1 \(ce\); expected a number >= 0"),
        ([{"name": "ce", "weight": True}], r"weight=True \(ce\)"),
        ([{"name": "ce", "weight": float("nan")}], r"weight=nan"),
        (
            [{"name": "ohem", "threshold": 0.7}],
            r"train\.loss\[0\] \(ohem\): unknown option threshold; allowed: name, weight, thresh, min_kept",
        ),
        ([{"name": "ce", "gamma": 2}], r"unknown option gamma; allowed: name, weight, label_smoothing"),
        ([], r"non-empty list of terms"),
    ],
)
def test_bad_loss_terms_name_the_allowed_values(loss: list, message: str) -> None:
    cfg = Config()
    with pytest.raises(ConfigError, match=message):
        cfg.train.loss = loss
        apply_overrides(cfg, [])  # runs validate
    with pytest.raises(ConfigError, match=message):
        from_dict({"train": {"loss": loss}})


def test_term_that_is_not_a_mapping() -> None:
    cfg = Config()
    cfg.train.loss = ["ce"]  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"train\.loss\[0\]='ce' is not a mapping"):
        apply_overrides(cfg, [])
    # From YAML or --set, the type check of the field answers first.
    with pytest.raises(ConfigError, match=r"train\.loss="):
        from_dict({"train": {"loss": ["ce"]}})
    with pytest.raises(ConfigError, match=r"train\.loss="):
        apply_overrides(Config(), ["train.loss=ce"])

"""Cityscapes iIoU on hand-built instances with known answers, against a per-instance loop that
follows the official evaluation's steps, and fed from a synthetic Cityscapes tree."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semseg.data.cityscapes import CLASSES, LABELS, Cityscapes
from semseg.errors import DataError, InvalidOptionError
from semseg.metrics import (
    CITYSCAPES_AVERAGE_INSTANCE_SIZE,
    CITYSCAPES_INSTANCE_TRAIN_IDS,
    CITYSCAPES_NUM_CLASSES,
    ConfusionMatrix,
    InstanceIoU,
)

CAR, PERSON = 13, 11


def _scores(pred: list[int], target: list[int], inst: list[int], iiou: InstanceIoU, n: int) -> dict[str, object]:
    p, t, i = torch.tensor(pred), torch.tensor(target), torch.tensor(inst)
    cm = ConfusionMatrix(n)
    cm.update(p, t)
    iiou.update(p, t, i)
    return {**cm.compute(), **iiou.compute(cm)}


def test_module_worked_example() -> None:
    # class 1 (average size 4): instance A = 2 pixels (1 right), B = 6 pixels (all right);
    # 3 pixels of class 0 predicted as 1.
    target = [1, 1] + [1] * 6 + [0, 0, 0, 0]
    pred = [1, 0] + [1] * 6 + [1, 1, 1, 0]
    inst = [5, 5] + [9] * 6 + [0, 0, 0, 0]
    s = _scores(pred, target, inst, InstanceIoU(2, {1: 4.0}), 2)
    assert s["iiou_per_class"][1] == pytest.approx(6 / 11, abs=1e-15)
    assert s["iou"][1] == pytest.approx(7 / 11, abs=1e-15)
    assert math.isnan(s["iiou_per_class"][0]) and s["iiou"] == s["iiou_per_class"][1]


def test_cityscapes_constants_and_classes() -> None:
    iiou = InstanceIoU.cityscapes()
    assert iiou.num_classes == 19
    scored = {c for c in range(19) if iiou.average_size[c] > 0}
    assert scored == {11, 12, 13, 14, 15, 16, 17, 18}  # person .. bicycle
    assert float(iiou.average_size[CAR]) == CITYSCAPES_AVERAGE_INSTANCE_SIZE["car"] == 12794.0202738185
    # A 4-pixel car with 3 pixels found and no false positives: the weights cancel -> 3/4.
    s = _scores([13, 13, 13, 0, 0], [13, 13, 13, 13, 0], [26000, 26000, 26000, 26000, 0], iiou, 19)
    assert s["iiou_per_class"][CAR] == pytest.approx(0.75, abs=1e-15)
    # Classes with instances but none seen and no false positives: NaN, out of the mean.
    assert math.isnan(s["iiou_per_class"][PERSON]) and s["iiou"] == pytest.approx(0.75, abs=1e-15)


def test_cityscapes_table_agrees_with_the_dataset() -> None:
    """The metric keeps its own copy of the train ids (metrics never import data): it must match
    the dataset's label table, class for class."""
    assert CITYSCAPES_NUM_CLASSES == len(CLASSES)
    evaluated_with_instances = {name: train_id for _, name, train_id, has in LABELS if has and train_id != 255}
    assert CITYSCAPES_INSTANCE_TRAIN_IDS == evaluated_with_instances
    assert set(CITYSCAPES_AVERAGE_INSTANCE_SIZE) == set(CITYSCAPES_INSTANCE_TRAIN_IDS)
    assert all(CLASSES[train_id] == name for name, train_id in CITYSCAPES_INSTANCE_TRAIN_IDS.items())
    iiou = InstanceIoU.cityscapes()
    for name, size in CITYSCAPES_AVERAGE_INSTANCE_SIZE.items():
        assert float(iiou.average_size[CLASSES.index(name)]) == size


def test_false_positives_are_not_weighted() -> None:
    # One 2-pixel car, both found; 1 road pixel predicted as car. w = 12794.02.../2.
    iiou = InstanceIoU.cityscapes()
    s = _scores([13, 13, 13], [13, 13, 0], [26001, 26001, 0], iiou, 19)
    w = CITYSCAPES_AVERAGE_INSTANCE_SIZE["car"] / 2
    assert s["iiou_per_class"][CAR] == pytest.approx(2 * w / (2 * w + 1), rel=1e-15)
    # A class with instances, none in the ground truth, only a false positive: 0 (not NaN).
    s = _scores([11, 0], [0, 0], [0, 0], InstanceIoU.cityscapes(), 19)
    assert s["iiou_per_class"][PERSON] == 0.0


def test_instances_on_ignored_pixels_and_crowds_are_skipped() -> None:
    iiou = InstanceIoU(3, {1: 10.0, 2: 10.0})
    # instance 7 lies on ignored pixels (e.g. a caravan): it adds nothing; id 0 is no instance.
    s = _scores([1, 1, 2, 2], [1, 255, 255, 2], [3, 7, 7, 0], iiou, 3)
    assert s["iiou_per_class"][1] == 1.0 and math.isnan(s["iiou_per_class"][2])


def official_loop(pred: np.ndarray, target: np.ndarray, inst: np.ndarray, sizes: dict[int, float], n: int):  # type: ignore[no-untyped-def]
    """iIoU by the steps of the official script: a loop over instance ids > 0, each with weight
    average size / instance size; false positives from the unweighted confusion counts."""
    tp_w, fn_w = np.zeros(n), np.zeros(n)
    for inst_id in np.unique(inst[inst > 0]):
        m = inst == inst_id
        c = int(target[m][0])
        if c not in sizes:
            continue
        size = m.sum()
        tp = np.count_nonzero(pred[m] == c)
        weight = sizes[c] / float(size)
        tp_w[c] += tp * weight
        fn_w[c] += (size - tp) * weight
    valid = target != 255
    out = {}
    for c in sizes:
        fp = np.count_nonzero(valid & (target != c) & (pred == c))
        denom = tp_w[c] + fp + fn_w[c]
        out[c] = tp_w[c] / denom if denom > 0 else math.nan
    return out


def test_matches_official_loop_on_random_instances() -> None:
    rng = np.random.default_rng(0)
    n, sizes = 6, {2: 50.0, 3: 7.5, 5: 300.0}
    iiou, cm = InstanceIoU(n, sizes), ConfusionMatrix(n)
    preds, targets, insts = [], [], []
    for image in range(4):
        target = rng.integers(0, n, (20, 30))
        inst = np.zeros_like(target)
        for k in range(6):  # rectangles of random instance classes, later ones on top
            c = int(rng.choice([2, 3, 5, 4]))
            y, x = rng.integers(0, 16), rng.integers(0, 24)
            h, w = rng.integers(1, 5), rng.integers(1, 7)
            target[y : y + h, x : x + w] = c
            inst[y : y + h, x : x + w] = 1000 * c + 10 * image + k
        target[rng.random(target.shape) < 0.05] = 255  # ignored pixels outside instances only
        target[inst > 0] = inst[inst > 0] // 1000
        pred = np.where(rng.random(target.shape) < 0.7, target, rng.integers(0, n, target.shape)) % 256
        pred[pred == 255] = 0
        pt, tt, it = (torch.from_numpy(a) for a in (pred, target, inst))
        cm.update(pt, tt)
        iiou.update(pt, tt, it)
        preds.append(pred)
        targets.append(target)
        insts.append(inst)
    ref = official_loop(np.concatenate(preds), np.concatenate(targets), np.concatenate(insts), sizes, n)
    got = iiou.compute(cm)["iiou_per_class"]
    for c in range(n):
        if c in ref:
            assert got[c] == pytest.approx(ref[c], rel=1e-12), c
        else:
            assert math.isnan(got[c])


def test_bad_inputs() -> None:
    iiou = InstanceIoU(3, {1: 4.0})
    with pytest.raises(DataError, match=r"instance id 4 covers pixels of classes 0 and 1"):
        iiou.update(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([4, 4]))
    with pytest.raises(DataError, match=r"shapes differ"):
        iiou.update(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([4]))
    with pytest.raises(DataError, match=r"confusion matrix is \(2, 2\), expected 3x3"):
        iiou.compute(torch.zeros(2, 2))
    with pytest.raises(InvalidOptionError, match=r"bad: \[5\]"):
        InstanceIoU(3, {5: 4.0})


def test_from_cityscapes_tree(tmp_path: Path) -> None:
    """The dataset's instance ids drive the metric: a 16-bit instanceIds PNG on disk."""
    city = tmp_path / "gtFine" / "val" / "ulm"
    (tmp_path / "leftImg8bit" / "val" / "ulm").mkdir(parents=True)
    city.mkdir(parents=True)
    Image.new("RGB", (4, 2)).save(tmp_path / "leftImg8bit" / "val" / "ulm" / "ulm_000000_000001_leftImg8bit.png")
    ids = np.array([[26, 26, 26, 7], [24, 24, 26, 7]], dtype=np.uint8)  # car, person, road
    inst = np.array([[26000, 26000, 26000, 7], [24002, 24002, 26, 7]], dtype=np.uint16)  # 26: a crowd
    Image.fromarray(ids).save(city / "ulm_000000_000001_gtFine_labelIds.png")
    Image.fromarray(inst).save(city / "ulm_000000_000001_gtFine_instanceIds.png")
    ds = Cityscapes(tmp_path, "val")
    _, mask = ds[0]
    instances = ds.load_instances(0)
    pred = torch.tensor([[13, 0, 13, 0], [11, 11, 13, 0]])  # car: 2 of 3 found; crowd pixel right
    cm, iiou = ConfusionMatrix(19), InstanceIoU.cityscapes()
    cm.update(pred, mask)
    iiou.update(pred, mask, instances)
    s = iiou.compute(cm)
    assert s["iiou_per_class"][CAR] == pytest.approx(2 / 3, abs=1e-15)  # weights cancel: one car, no FP
    assert s["iiou_per_class"][PERSON] == 1.0
    assert s["iiou"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-15)

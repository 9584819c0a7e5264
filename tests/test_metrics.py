"""Confusion-matrix metrics: the docstring's worked example, an independent numpy reference,
torchmetrics (test-only dependency), input validation, and all_reduce over two gloo processes."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from semseg.errors import DataError
from semseg.metrics import ConfusionMatrix, InstanceIoU


def test_docstring_worked_example() -> None:
    cm = ConfusionMatrix(3, ignore_index=255)
    cm.update(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 0, 1, 255]))
    s = cm.compute()
    assert cm.mat.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert s["iou"][:2] == [0.5, 0.5] and math.isnan(s["iou"][2])
    assert s["miou"] == 0.5 and s["pixel_accuracy"] == pytest.approx(2 / 3, abs=1e-15)


def reference(pred: np.ndarray, target: np.ndarray, n: int, ignore: int) -> dict[str, object]:
    """Per-class counting with boolean masks, written independently of ConfusionMatrix."""
    valid = target != ignore
    p, t = pred[valid], target[valid]
    tp = np.array([np.sum((t == c) & (p == c)) for c in range(n)], dtype=float)
    fp = np.array([np.sum((t != c) & (p == c)) for c in range(n)], dtype=float)
    fn = np.array([np.sum((t == c) & (p != c)) for c in range(n)], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (tp + fp + fn)
        acc = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
    freq = (tp + fn) / t.size
    return {
        "pixel_accuracy": tp.sum() / t.size,
        "mean_accuracy": np.nanmean(acc),
        "iou": iou,
        "miou": np.nanmean(iou),
        "fwiou": np.nansum(freq * iou),
        "f1": f1,
        "mf1": np.nanmean(f1),
        "accuracy": acc,
    }


def _random(n: int, shape: tuple[int, ...], ignore: int, seed: int, absent: int | None = None):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, n, shape, generator=g)
    pred = torch.where(torch.rand(shape, generator=g) < 0.6, target, torch.randint(0, n, shape, generator=g))
    if absent is not None:  # one class never in target nor prediction
        target[target == absent] = (absent + 1) % n
        pred[pred == absent] = (absent + 1) % n
    target[torch.rand(shape, generator=g) < 0.15] = ignore
    return pred, target


@pytest.mark.parametrize(
    ("n", "ignore", "dtype"),
    [(21, 255, torch.int64), (5, 255, torch.uint8), (4, -1, torch.int64), (6, 0, torch.int32), (19, 300, torch.int64)],
)
def test_matches_numpy_reference(n: int, ignore: int, dtype: torch.dtype) -> None:
    cm = ConfusionMatrix(n, ignore_index=ignore)
    preds, targets = [], []
    for seed in range(3):
        pred, target = _random(n, (2, 17, 23), ignore, seed, absent=n - 1)
        cm.update(pred.to(dtype), target.to(dtype))
        preds.append(pred.numpy().ravel())
        targets.append(target.numpy().ravel())
    got, ref = cm.compute(), reference(np.concatenate(preds), np.concatenate(targets), n, ignore)
    for key in ("pixel_accuracy", "mean_accuracy", "miou", "fwiou", "mf1"):
        assert got[key] == pytest.approx(ref[key], abs=1e-12), key
    for key in ("iou", "f1", "accuracy"):
        np.testing.assert_allclose(np.array(got[key]), ref[key], atol=1e-12, equal_nan=True)
    assert math.isnan(got["iou"][n - 1])  # the absent class is left out of the means


def test_matches_torchmetrics() -> None:
    tmc = pytest.importorskip("torchmetrics.classification")
    n, ignore = 7, 255
    pred, target = _random(n, (3, 31, 29), ignore, seed=5)
    cm = ConfusionMatrix(n, ignore)
    cm.update(pred, target)
    s = cm.compute()
    kw = {"num_classes": n, "ignore_index": ignore}
    iou = tmc.MulticlassJaccardIndex(average=None, **kw)(pred, target)
    f1 = tmc.MulticlassF1Score(average=None, **kw)(pred, target)
    recall = tmc.MulticlassRecall(average=None, **kw)(pred, target)
    np.testing.assert_allclose(s["iou"], iou.double().numpy(), atol=1e-6)
    np.testing.assert_allclose(s["f1"], f1.double().numpy(), atol=1e-6)
    np.testing.assert_allclose(s["accuracy"], recall.double().numpy(), atol=1e-6)
    assert s["miou"] == pytest.approx(float(tmc.MulticlassJaccardIndex(average="macro", **kw)(pred, target)), abs=1e-6)
    assert s["pixel_accuracy"] == pytest.approx(
        float(tmc.MulticlassAccuracy(average="micro", **kw)(pred, target)), abs=1e-6
    )
    assert s["mean_accuracy"] == pytest.approx(
        float(tmc.MulticlassAccuracy(average="macro", **kw)(pred, target)), abs=1e-6
    )


def test_binary_foreground_scores_match_torchmetrics() -> None:
    tmc = pytest.importorskip("torchmetrics.classification")
    pred, target = _random(2, (4, 16, 16), 255, seed=9)
    cm = ConfusionMatrix(2)
    cm.update(pred, target)
    s = cm.compute()
    assert s["foreground_iou"] == pytest.approx(float(tmc.BinaryJaccardIndex(ignore_index=255)(pred, target)), abs=1e-6)
    assert s["foreground_f1"] == pytest.approx(float(tmc.BinaryF1Score(ignore_index=255)(pred, target)), abs=1e-6)
    # by hand: 3 foreground pixels, 2 found, 1 false alarm -> IoU 2/4, F1 4/6
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([1, 1, 0, 1, 0, 1]), torch.tensor([1, 1, 1, 0, 0, 255]))
    s = cm.compute()
    assert (s["foreground_iou"], s["foreground_f1"]) == (0.5, pytest.approx(2 / 3, abs=1e-15))
    assert "foreground_iou" not in ConfusionMatrix(3).compute()


def test_batching_does_not_change_counts() -> None:
    pred, target = _random(9, (6, 20, 20), 255, seed=2)
    whole, split = ConfusionMatrix(9), ConfusionMatrix(9)
    whole.update(pred, target)
    for p, t in zip(pred, target, strict=True):
        split.update(p, t)
    assert torch.equal(whole.mat, split.mat) and int(whole.mat.sum()) == int((target != 255).sum())


@pytest.mark.parametrize(
    ("pred", "target", "message"),
    [
        ([0, 1], [0, 3], r"target label 3 outside 0..2 and not ignore_index=255"),
        ([0, 1], [0, 256], r"target label 256 outside 0..2"),
        ([0, 1], [-1, 0], r"target label -1 outside 0..2"),
        ([0, 3], [0, 1], r"predicted label 3 outside 0..2"),
        ([0, 1, 2], [0, 1], r"prediction shape \(3,\) != target shape \(2,\)"),
    ],
)
def test_bad_labels_raise(pred: list[int], target: list[int], message: str) -> None:
    with pytest.raises(DataError, match=message):
        ConfusionMatrix(3).update(torch.tensor(pred), torch.tensor(target))


def test_float_labels_raise() -> None:
    with pytest.raises(DataError, match=r"labels must be integer tensors"):
        ConfusionMatrix(3).update(torch.zeros(4), torch.zeros(4, dtype=torch.long))


def _batches(rank: int, world: int):  # type: ignore[no-untyped-def]
    """Rank ``rank``'s share of a fixed set of (pred, target, instances) batches."""
    out = []
    for seed in range(rank, 6, world):
        pred, target = _random(19, (1, 24, 32), 255, seed)
        inst = torch.zeros_like(target)
        inst[0, 2:9, 3 + seed : 12 + seed] = 26000 + seed  # one car per image (train id 13)
        target[inst > 0] = 13
        out.append((pred, target, inst))
    return out


def _worker(rank: int, world: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    cm, iiou = ConfusionMatrix(19), InstanceIoU.cityscapes()
    for pred, target, inst in _batches(rank, world):
        cm.update(pred, target)
        iiou.update(pred, target, inst)
    cm.all_reduce()
    iiou.all_reduce()
    if rank == 0:
        torch.save({"mat": cm.mat, "scores": cm.compute(), "iiou": iiou.compute(cm)}, out)
    dist.destroy_process_group()


@pytest.mark.skipif(sys.platform != "linux", reason="gloo file store")
def test_all_reduce_two_processes_equals_single_process(tmp_path: Path) -> None:
    out = tmp_path / "reduced.pt"
    mp.spawn(_worker, args=(2, f"file://{tmp_path / 'store'}", str(out)), nprocs=2, join=True)
    reduced = torch.load(out)
    cm, iiou = ConfusionMatrix(19), InstanceIoU.cityscapes()
    for pred, target, inst in _batches(0, 1):
        cm.update(pred, target)
        iiou.update(pred, target, inst)
    assert torch.equal(reduced["mat"], cm.mat)
    assert reduced["scores"]["miou"] == cm.compute()["miou"]
    single = iiou.compute(cm)
    assert reduced["iiou"]["iiou"] == pytest.approx(single["iiou"], rel=1e-12)
    assert 0 < single["iiou"] < 1


def test_metrics_import_no_dataset_or_model_code() -> None:
    """Metrics are pure counting: no module of semseg.metrics imports data, models, losses or engine."""
    import ast

    import semseg.metrics

    for path in sorted(Path(semseg.metrics.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("semseg."):
                    assert name in ("semseg.errors", "semseg.constants") or name.startswith("semseg.metrics."), (
                        f"{path.name} imports {name}"
                    )

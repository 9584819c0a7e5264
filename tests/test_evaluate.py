"""Dataset-level evaluation, including Cityscapes' iIoU for datasets with instance ids."""

from __future__ import annotations

import torch
from torch import nn

from semseg.engine.evaluate import evaluate
from semseg.metrics import ConfusionMatrix, InstanceIoU


class _FixedLogits(nn.Module):
    """Predicts class 13 (car) on the left half and 0 elsewhere, whatever the input."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.mean, self.std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], 19, *x.shape[-2:]) + self.w
        out[:, 13, :, : x.shape[-1] // 2] = 1.0
        out[:, 0, :, x.shape[-1] // 2 :] = 1.0
        return out


class _InstanceDataset:
    def __init__(self) -> None:
        mask = torch.zeros(4, 8, dtype=torch.int64)
        mask[:, 2:6] = 13  # a car spanning both halves
        instances = torch.zeros(4, 8, dtype=torch.int64)
        instances[:, 2:6] = 26001
        self.item = (torch.zeros(3, 4, 8, dtype=torch.uint8), mask)
        self.instances = instances

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.item

    def load_instances(self, i: int) -> torch.Tensor:
        return self.instances


def test_evaluate_adds_iiou_when_the_dataset_has_instances() -> None:
    ds = _InstanceDataset()
    scores, cm = evaluate(_FixedLogits(), ds, 19, torch.device("cpu"), progress=False)
    reference = InstanceIoU.cityscapes("cpu")
    ref_cm = ConfusionMatrix(19)
    pred = _FixedLogits()(torch.zeros(1, 3, 4, 8)).argmax(1)[0]
    for _ in range(2):
        reference.update(pred, ds.item[1], ds.instances)
        ref_cm.update(pred, ds.item[1])
    expected = reference.compute(ref_cm)
    assert scores["iiou"] == expected["iiou"] and 0 < scores["iiou"] < 1
    assert torch.equal(cm.mat, ref_cm.mat)


def test_evaluate_without_instances_has_no_iiou() -> None:
    ds = _InstanceDataset()
    del_attr = type("NoInst", (), {"__len__": ds.__len__, "__getitem__": lambda self, i: ds.item})()
    scores, _ = evaluate(_FixedLogits(), del_attr, 19, torch.device("cpu"), progress=False)
    assert "iiou" not in scores


def test_one_loop_serves_every_recipe_with_shards_and_iiou() -> None:
    """The CRF recipe goes through the same loop: sharded over ranks (each image counted once)
    and with iIoU on datasets with instance ids."""
    from semseg.inference import Predictor

    ds, model = _InstanceDataset(), _FixedLogits()
    crf = Predictor(model, crf=True, crf_options={"iterations": 2})
    full, full_cm = evaluate(model, ds, 19, torch.device("cpu"), predictor=crf, progress=False)
    assert "iiou" in full
    shards = [
        evaluate(model, ds, 19, torch.device("cpu"), predictor=crf, rank=r, world_size=2, progress=False)[1]
        for r in range(2)
    ]
    assert torch.equal(shards[0].mat + shards[1].mat, full_cm.mat)
    assert shards[0].mat.sum() == shards[1].mat.sum() == full_cm.mat.sum() // 2

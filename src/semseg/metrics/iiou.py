"""Instance-level IoU (iIoU), the Cityscapes benchmark's second class score (Cordts et al. 2016,
https://arxiv.org/abs/1604.01685, Sec. 3.2; defined by ``evalPixelLevelSemanticLabeling.py`` in
https://github.com/mcordts/cityscapesScripts).

Plain IoU favours large objects: a missed distant pedestrian costs a few pixels. iIoU weights
each ground-truth instance's pixels by ``w = average instance size of its class / its size``, so
every instance counts about as much as an average one::

    iIoU_c = iTP_c / (iTP_c + FP_c + iFN_c)
    iTP_c = sum over instances i of class c of  w_i * (pixels of i predicted as c)
    iFN_c = sum over instances i of class c of  w_i * (pixels of i predicted as anything else)

FP_c is *not* weighted (a false positive belongs to no instance): it is the pixels of other
evaluated classes predicted as c, read from the ordinary confusion matrix. The average sizes are
the fixed constants of the official script (measured on the training set), not recomputed.
Classes without instances have no iIoU (NaN); the mean is over the classes that have one.

Worked example (one class with average size 4; pixels of class 0 predicted as 1: 3)::

    instance A: 2 pixels, 1 predicted right -> w = 4/2: iTP 2, iFN 2
    instance B: 6 pixels, all right         -> w = 4/6: iTP 4, iFN 0
    iIoU = 6 / (6 + 3 + 2) = 6/11   (plain IoU = 7 / (7 + 3 + 1) = 7/11)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from semseg.constants import IGNORE_INDEX
from semseg.errors import DataError, InvalidOptionError
from semseg.metrics.confusion import ConfusionMatrix

# The Cityscapes numbers iIoU needs, kept here so that metrics need no dataset code: the 19
# evaluated train ids and the train ids of the 8 classes with instances (as in the official label
# table, which semseg.data.cityscapes holds; tests check that the two agree).
CITYSCAPES_NUM_CLASSES = 19
CITYSCAPES_INSTANCE_TRAIN_IDS = {
    "person": 11,
    "rider": 12,
    "car": 13,
    "truck": 14,
    "bus": 15,
    "train": 16,
    "motorcycle": 17,
    "bicycle": 18,
}

# Average instance size in pixels per class, from cityscapesScripts' evaluation script. Caravan
# and trailer also have constants there but are ignored in evaluation (no train id), so not here.
CITYSCAPES_AVERAGE_INSTANCE_SIZE = {
    "person": 3462.4756337644,
    "rider": 3930.4788056518,
    "car": 12794.0202738185,
    "truck": 27855.1264367816,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "motorcycle": 6298.7200839748,
    "bicycle": 4672.3249222261,
}


class InstanceIoU:
    """Accumulates instance-weighted true positives and false negatives per class.

    Args:
        num_classes: number of evaluated classes (train ids ``0 .. num_classes - 1``).
        average_size: train id -> average instance size in pixels, for the classes scored by iIoU.
        ignore_index: target value of unevaluated pixels; instances on them are skipped.
        device: where the sums live.
    """

    def __init__(
        self,
        num_classes: int,
        average_size: Mapping[int, float],
        ignore_index: int = IGNORE_INDEX,
        device: torch.device | str = "cpu",
    ) -> None:
        bad = [c for c, s in average_size.items() if not 0 <= c < num_classes or not s > 0]
        if bad:
            raise InvalidOptionError(f"average_size needs train ids 0..{num_classes - 1} and sizes > 0; bad: {bad}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # Index num_classes holds the weight 0 for ignored instances, so lookups need no branch.
        size = torch.zeros(num_classes + 1, dtype=torch.float64)
        for c, s in average_size.items():
            size[c] = float(s)
        self.average_size = size.to(device)
        self.sums = torch.zeros(2, num_classes, dtype=torch.float64, device=device)  # iTP, iFN

    @classmethod
    def cityscapes(cls, device: torch.device | str = "cpu") -> InstanceIoU:
        """The official setting: 19 train ids, the 8 instance classes and their average sizes."""
        sizes = {CITYSCAPES_INSTANCE_TRAIN_IDS[name]: s for name, s in CITYSCAPES_AVERAGE_INSTANCE_SIZE.items()}
        return cls(CITYSCAPES_NUM_CLASSES, sizes, device=device)

    def reset(self) -> None:
        """Zero the sums, to start a new evaluation."""
        self.sums.zero_()

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor, instances: Tensor) -> None:
        """Add one batch: ``pred`` and ``target`` train ids, ``instances`` ids (0 = no instance),
        all of the same shape (e.g. ``(N, H, W)``). Each instance id must be unique within the batch and cover pixels
        of one class (its class is read from ``target``)."""
        if not pred.shape == target.shape == instances.shape:
            raise DataError(
                f"shapes differ: pred {tuple(pred.shape)}, target {tuple(target.shape)}, "
                f"instances {tuple(instances.shape)}"
            )
        device = self.sums.device
        inst = instances.reshape(-1).to(device)
        on = (inst > 0).nonzero().squeeze(1)
        if on.numel() == 0:
            return
        ids, which = torch.unique(inst[on], return_inverse=True)
        cls = target.reshape(-1).to(device)[on].long()
        hit = pred.reshape(-1).to(device)[on].long() == cls
        k = ids.numel()
        size = torch.bincount(which, minlength=k).double()
        tp = torch.bincount(which, weights=hit.double(), minlength=k)
        lo = torch.full((k,), 1 << 62, dtype=torch.int64, device=device).scatter_reduce(0, which, cls, "amin")
        hi = torch.full((k,), -1, dtype=torch.int64, device=device).scatter_reduce(0, which, cls, "amax")
        mixed = (lo != hi).nonzero()
        if mixed.numel():
            i = int(mixed[0])
            raise DataError(f"instance id {int(ids[i])} covers pixels of classes {int(lo[i])} and {int(hi[i])}")
        # Instances of ignored or out-of-range classes get weight 0 through the extra slot.
        inst_cls = torch.where((lo >= 0) & (lo < self.num_classes), lo, self.num_classes)
        weight = self.average_size[inst_cls] / size
        weighted = torch.zeros(2, self.num_classes + 1, dtype=torch.float64, device=device)
        weighted[0].scatter_add_(0, inst_cls, tp * weight)
        weighted[1].scatter_add_(0, inst_cls, (size - tp) * weight)
        self.sums += weighted[:, : self.num_classes]

    def all_reduce(self) -> None:
        """Sum over all processes (no-op outside ``torch.distributed``)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.sums)

    def compute(self, confusion: ConfusionMatrix | Tensor) -> dict[str, object]:
        """``iiou`` (mean over the instance classes) and ``iiou_per_class`` (NaN elsewhere).

        Args:
            confusion: the confusion matrix accumulated over the same pixels; it supplies the
                unweighted false positives.
        """
        mat = confusion.mat if isinstance(confusion, ConfusionMatrix) else confusion
        if tuple(mat.shape) != (self.num_classes, self.num_classes):
            raise DataError(f"confusion matrix is {tuple(mat.shape)}, expected {self.num_classes}x{self.num_classes}")
        m = mat.double().cpu()
        fp = m.sum(0) - m.diag()
        itp, ifn = self.sums.cpu()
        denom = itp + fp + ifn
        scored = self.average_size[: self.num_classes].cpu() > 0
        per_class = torch.where(scored & (denom > 0), itp / denom.clamp(min=1e-300), math.nan)
        valid = per_class[~torch.isnan(per_class)]
        return {"iiou": float(valid.mean()) if valid.numel() else math.nan, "iiou_per_class": per_class.tolist()}

"""Dataset-level segmentation metrics from one accumulated confusion matrix.

Every score is computed from the summed counts, never averaged over images, so it is exact at
dataset level and identical however the data is split into batches or processes.

Means over classes (``miou``, ``mean_accuracy``, ``mf1``) skip classes that are absent from both
ground truth and prediction: their per-class value is NaN and ``nanmean`` leaves them out.
A class present in the ground truth but never predicted scores 0 and counts.

Worked example (3 classes, ignore_index=255)::

    target = [0, 0, 1, 255]      pred = [0, 1, 1, 2]
    the ignored pixel is dropped -> pairs (0,0) (0,1) (1,1)
    class 0: TP=1 FP=0 FN=1 -> IoU 1/2;  class 1: TP=1 FP=1 FN=0 -> IoU 1/2
    class 2: never in target, and the only prediction of 2 was on an ignored pixel -> NaN
    miou = mean(1/2, 1/2) = 0.5;  pixel_accuracy = 2/3
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from semseg.constants import IGNORE_INDEX
from semseg.errors import DataError


class ConfusionMatrix:
    """Accumulates a ``(num_classes, num_classes)`` matrix, rows = ground truth, cols = prediction.

    Args:
        num_classes: number of evaluated classes; labels are ``0 .. num_classes - 1``.
        ignore_index: target value left out of every count (255 by convention).
        device: where the counts live (the device of the predictions, for speed).
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def reset(self) -> None:
        """Zero the counts, to start a new evaluation."""
        self.mat.zero_()

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add label maps of any matching shape (e.g. ``(N, H, W)``); ``pred`` holds class ids.

        One pass of integer arithmetic and one ``bincount``: each pixel goes to bin
        ``target * num_classes + pred``, and ignored pixels land in a row of their own that is
        dropped afterwards, so no boolean-mask copy of the inputs is made. The counts are exact.
        """
        if pred.shape != target.shape:
            raise DataError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        if pred.is_floating_point() or target.is_floating_point():
            raise DataError(f"labels must be integer tensors, got pred {pred.dtype} and target {target.dtype}")
        n, ignore = self.num_classes, self.ignore_index
        if self.mat.device != pred.device:
            self.mat = self.mat.to(pred.device)
        pred = pred.reshape(-1)
        target = target.reshape(-1).to(pred.device)
        if pred.numel() == 0:
            return
        pmin, pmax = (int(v) for v in torch.aminmax(pred))
        if pmin < 0 or pmax >= n:
            raise DataError(f"predicted label {pmin if pmin < 0 else pmax} outside 0..{n - 1}")
        if ignore < 0:  # e.g. -1 or -100: move the ignored pixels to row n so every bin index is >= 0
            target = torch.where(target == ignore, n, target)
            ignore = n
        rows = max(n, ignore + 1)
        tmin, tmax = (int(v) for v in torch.aminmax(target))
        if tmin < 0 or tmax >= rows:
            raise DataError(self._bad_target(tmin if tmin < 0 else tmax))
        # int64 before the multiply: uint8 or int32 labels times num_classes could overflow.
        bins = torch.add(pred, target.long(), alpha=n)
        counts = torch.bincount(bins, minlength=rows * n).reshape(rows, n)
        counts[ignore] = 0
        if rows > n:
            extra = counts[n:].sum(1).nonzero()
            if extra.numel():
                raise DataError(self._bad_target(n + int(extra[0])))
        self.mat += counts[:n]

    def _bad_target(self, value: int) -> str:
        n = self.num_classes
        return f"target label {value} outside 0..{n - 1} and not ignore_index={self.ignore_index}"

    def all_reduce(self) -> None:
        """Sum the counts over all processes (no-op outside ``torch.distributed``)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.mat)

    def compute(self) -> dict[str, object]:
        """Scores from the accumulated counts.

        Returns:
            ``pixel_accuracy``, ``mean_accuracy``, ``miou``, ``fwiou``, ``mf1`` (floats) and
            ``iou``, ``accuracy``, ``f1`` (per-class lists, NaN for absent classes); with two
            classes also ``foreground_iou`` and ``foreground_f1``, the scores of class 1.
        """
        return scores_from_confusion(self.mat)


def scores_from_confusion(mat: Tensor) -> dict[str, object]:
    """The scores of :meth:`ConfusionMatrix.compute` from a ``(C, C)`` count matrix (rows = ground
    truth, columns = prediction), on any device and of any numeric dtype."""
    m = mat.double().cpu()
    tp = m.diag()
    gt = m.sum(1)
    pr = m.sum(0)
    total = m.sum()
    union = gt + pr - tp
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    iou = torch.where(union > 0, tp / union.clamp(min=1), nan)
    acc = torch.where(gt > 0, tp / gt.clamp(min=1), nan)
    f1 = torch.where(gt + pr > 0, 2 * tp / (gt + pr).clamp(min=1), nan)
    freq = gt / total if total > 0 else gt
    valid = union > 0
    scores: dict[str, object] = {
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else math.nan,
        "mean_accuracy": _nanmean(acc),
        "miou": _nanmean(iou),
        "fwiou": float((freq[valid] * iou[valid]).sum()) if total > 0 else math.nan,
        "mf1": _nanmean(f1),
        "iou": iou.tolist(),
        "accuracy": acc.tolist(),
        "f1": f1.tolist(),
    }
    if m.shape[0] == 2:
        # Two-class tasks (background 0, foreground 1) are usually reported by the foreground's own
        # scores: the mean over both classes is inflated by the easy background.
        scores["foreground_iou"] = float(iou[1])
        scores["foreground_f1"] = float(f1[1])
    return scores


def _nanmean(t: Tensor) -> float:
    keep = ~torch.isnan(t)
    return float(t[keep].mean()) if keep.any() else math.nan

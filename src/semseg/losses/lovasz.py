"""Lovasz losses: a convex surrogate of the Jaccard (IoU) loss that can be optimised directly.

Berman, Triki, Blaschko, "The Lovasz-Softmax loss: A tractable surrogate for the optimization of
the intersection-over-union measure in neural networks", CVPR 2018, https://arxiv.org/abs/1705.08790.

For one class ``c``, the Jaccard loss of a set ``M`` of mispredicted pixels is
``Delta(M) = 1 - |F ∩ not M| / |F ∪ M|`` (``F`` the pixels of class ``c``; ``F ∩ not M`` the true
positives, ``F ∪ M`` the union of prediction and ground truth), a submodular set function. Its
Lovasz extension at a vector of pixel errors ``m >= 0`` is piecewise linear and convex: with the
errors sorted in decreasing order ``m_(1) >= m_(2) >= ...`` and ``M_k`` the ``k`` pixels of largest
error,

    ``lovasz(m) = sum_k m_(k) * g_k,   g_k = Delta(M_k) - Delta(M_{k-1})``  (``Delta(M_0) = 0``)

and ``g`` is its gradient with respect to the sorted errors (defined wherever no two errors tie).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from semseg.constants import IGNORE_INDEX
from semseg.errors import DataError
from semseg.losses.dice import check_classes
from semseg.losses.functional import check_option, check_shapes


def lovasz_jaccard_gradient(fg_sorted: Tensor) -> Tensor:
    """The gradient ``g`` of the Lovasz extension of the Jaccard loss, column by column.

    ``fg_sorted``: ``(P, K)`` 0/1 (float) ground truth of ``K`` independent problems (one per
    class), each column ordered by decreasing error. With ``G`` the column's foreground count and
    ``M_k`` its first ``k`` pixels, ``|F ∩ not M_k| = G - cumsum(fg)_k`` and
    ``|F ∪ M_k| = G + cumsum(1 - fg)_k`` (never 0 for ``k >= 1``); ``g_k = Delta(M_k) - Delta(M_{k-1})``.

    Example: ``fg_sorted = [1, 0, 1]`` (``G = 2``) -> ``Delta = [1 - 1/2, 1 - 1/3, 1 - 0/3]``
    ``= [1/2, 2/3, 1]`` -> ``g = [1/2, 1/6, 1/3]``.

    Shape: ``(P, K)`` -> ``(P, K)``.
    """
    total = fg_sorted.sum(0)  # (K,)
    intersection = total - fg_sorted.cumsum(0)
    union = total + (1 - fg_sorted).cumsum(0)
    jaccard = 1 - intersection / union
    return torch.diff(jaccard, dim=0, prepend=torch.zeros_like(jaccard[:1]))


def check_max_pixels(max_pixels: object) -> None:
    """``max_pixels``: ``None`` or a whole number ``>= 1``."""
    ok = max_pixels is None or (isinstance(max_pixels, int) and not isinstance(max_pixels, bool) and max_pixels >= 1)
    check_option(ok, "max_pixels", max_pixels, "a whole number >= 1, or null for every pixel")


def sample_pixels(values: Tensor, labels: Tensor, max_pixels: int | None) -> tuple[Tensor, Tensor]:
    """At most ``max_pixels`` rows of ``values (P, ...)`` and ``labels (P,)``, drawn uniformly without
    replacement (torch's global generator, so a seeded run draws the same pixels); all of them
    when ``max_pixels`` is ``None`` or not below ``P``.

    Why: the Lovasz extension needs every class's errors sorted, and that sort is the cost of the
    loss (8 x 288 x 288 pixels x 11 classes: 1.7 s forward and backward on one core, 0.26 s with
    100,000 pixels sampled; docs/camvid.md #2). The Jaccard index of a uniform sample estimates
    the whole batch's, so the sampled surrogate keeps the objective at a fraction of the cost.
    """
    if max_pixels is None or labels.numel() <= max_pixels:
        return values, labels
    keep = torch.randperm(labels.numel(), device=labels.device)[:max_pixels]
    return values[keep], labels[keep]


def _lovasz_softmax_flat(prob: Tensor, labels: Tensor, classes: str, max_pixels: int | None) -> Tensor | None:
    """``prob (P, C)``, ``labels (P,)`` of labelled pixels -> the mean over classes, or ``None``
    when no class is counted (no pixel)."""
    if labels.numel() == 0:
        return None
    prob, labels = sample_pixels(prob, labels, max_pixels)
    fg = F.one_hot(labels, prob.shape[1]).to(prob.dtype)  # (P, C)
    errors = (fg - prob).abs()
    errors_sorted, order = errors.sort(0, descending=True)
    per_class = (errors_sorted * lovasz_jaccard_gradient(fg.gather(0, order))).sum(0)  # (C,)
    if classes == "present":
        per_class = per_class[fg.sum(0) > 0]
    return per_class.mean()


def lovasz_softmax(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = IGNORE_INDEX,
    classes: str = "present",
    per_image: bool = False,
    max_pixels: int | None = None,
) -> Tensor:
    """Lovasz-softmax loss (Berman et al. 2018, https://arxiv.org/abs/1705.08790).

    With ``p = softmax(logits)`` and, for each class ``c``, the pixel errors
    ``m_i(c) = |1[y_i = c] - p_i[c]|`` over the labelled pixels:

        ``loss = mean_c lovasz_c(m(c))``   (see the module docstring for ``lovasz_c``)

    averaged over the classes present in the labelled target (``classes="present"``, the
    default of the paper's code) or over all ``C`` classes (``classes="all"``). The pixels of the
    whole batch form one problem, or each image its own with ``per_image=True`` (then the mean
    over the images that have a labelled pixel). Class weights do not apply (the mean over classes
    already weighs every class equally).

    The loss is piecewise linear in ``p``: its gradient exists wherever no two errors of a class tie.

    Args:
        logits: ``(N, C, H, W)`` unnormalised scores.
        target: ``(N, H, W)`` int64 class ids, ``ignore_index`` for pixels left out.
        ignore_index: target value of pixels left out.
        classes: ``"present"`` or ``"all"``.
        per_image: one Jaccard problem per image instead of one per batch.
        max_pixels: sort at most this many labelled pixels per problem, a uniform random sample
            (:func:`sample_pixels`); ``None`` (default): all of them, the exact loss.

    Returns a scalar; 0 (with a gradient path) when every pixel is ignored.
    """
    check_shapes(logits, target)
    check_classes(classes)
    check_option(isinstance(per_image, bool), "per_image", per_image, "true or false")
    check_max_pixels(max_pixels)
    c = logits.shape[1]
    prob = torch.softmax(logits, 1).permute(0, 2, 3, 1)  # (N, H, W, C)
    keep = target != ignore_index
    groups = [(prob, target, keep)] if not per_image else [(prob[i], target[i], keep[i]) for i in range(len(target))]
    losses = [_lovasz_softmax_flat(p[k].reshape(-1, c), t[k], classes, max_pixels) for p, t, k in groups]
    found = [loss for loss in losses if loss is not None]
    return torch.stack(found).mean() if found else logits.sum() * 0.0


def _lovasz_hinge_flat(scores: Tensor, labels: Tensor, max_pixels: int | None) -> Tensor | None:
    if labels.numel() == 0:
        return None
    scores, labels = sample_pixels(scores, labels, max_pixels)
    fg = labels.to(scores.dtype)
    errors = 1 - scores * (2 * fg - 1)
    errors_sorted, order = errors.sort(descending=True)
    return (F.relu(errors_sorted) * lovasz_jaccard_gradient(fg[order][:, None])[:, 0]).sum()


def lovasz_hinge(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = IGNORE_INDEX,
    per_image: bool = False,
    max_pixels: int | None = None,
) -> Tensor:
    """Lovasz hinge loss for binary segmentation (Berman et al. 2018, https://arxiv.org/abs/1705.08790).

    With the sign ``s_i = 2 y_i - 1`` and the hinge errors ``m_i = max(0, 1 - s_i * logit_i)`` over
    the labelled pixels, ``loss = lovasz(m)`` for the Jaccard loss of the foreground (class 1).
    The pixels of the whole batch form one problem, or each image its own with ``per_image=True``
    (then the mean over the images that have a labelled pixel).

    Piecewise linear in the logits: the gradient exists wherever no two errors tie and none is 0.

    Args:
        logits: ``(N, 1, H, W)`` binary logits (foreground score).
        target: ``(N, H, W)`` int64, 0 or 1, ``ignore_index`` for pixels left out.
        ignore_index: target value of pixels left out.
        per_image: one Jaccard problem per image instead of one per batch.

    Returns a scalar; 0 (with a gradient path) when every pixel is ignored.
    """
    check_shapes(logits, target)
    check_option(isinstance(per_image, bool), "per_image", per_image, "true or false")
    check_max_pixels(max_pixels)
    if logits.shape[1] != 1:
        raise DataError(f"lovasz_hinge expects binary logits (N, 1, H, W), got {tuple(logits.shape)}")
    keep = target != ignore_index
    if keep.any() and (int(target[keep].min()) < 0 or int(target[keep].max()) > 1):
        raise DataError(f"lovasz_hinge expects targets 0, 1 or ignore_index={ignore_index}")
    scores = logits[:, 0]  # (N, H, W)
    groups = (
        [(scores, target, keep)] if not per_image else [(scores[i], target[i], keep[i]) for i in range(len(target))]
    )
    losses = [_lovasz_hinge_flat(s[k], t[k], max_pixels) for s, t, k in groups]
    found = [loss for loss in losses if loss is not None]
    return torch.stack(found).mean() if found else logits.sum() * 0.0

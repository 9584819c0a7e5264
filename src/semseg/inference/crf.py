"""The fully connected CRF: mean-field inference with Gaussian edge potentials.

Krahenbuhl and Koltun, "Efficient Inference in Fully Connected CRFs with Gaussian Edge
Potentials", NIPS 2011, https://arxiv.org/abs/1210.5644; as used by DeepLab v1/v2
(https://arxiv.org/abs/1606.00915) and, trained end to end, by CRF-as-RNN
(https://arxiv.org/abs/1502.03240).

Energy: ``E(x) = sum_i U_i(x_i) + sum_{i<j} mu(x_i, x_j) k(f_i, f_j)`` with unaries
``U = -log(p)`` and two kernels, exactly as pydensecrf's ``addPairwiseBilateral(sxy=121, srgb=5,
compat=4)`` and ``addPairwiseGaussian(sxy=3, compat=3)`` define them:

- bilateral (appearance): ``w1 exp(-|p_i - p_j|^2 / 2 sxy^2 - |I_i - I_j|^2 / 2 srgb^2)``,
  features ``(x / sxy, y / sxy, r / srgb, g / srgb, b / srgb)``;
- Gaussian (smoothness): ``w2 exp(-|p_i - p_j|^2 / 2 sxy^2)``, features ``(x / sxy, y / sxy)``.

Each kernel is normalised symmetrically, ``D^-1/2 K D^-1/2`` with ``D = diag(K 1)`` (pydensecrf's
default ``NORMALIZE_SYMMETRIC``), and the compatibility is Potts. The message passing runs on the
permutohedral lattice (:mod:`semseg.inference.lattice`), built once per image and kernel and
reused by every iteration; :func:`dense_crf_naive` does the same with the exact ``O(N^2)`` sum and
exists only as a test reference on tiny images.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor, nn

from semseg.errors import DataError, InvalidOptionError
from semseg.inference.lattice import LatticeOperator, PermutohedralLattice, single_threaded

Message = Callable[[Tensor], Tensor]


def dense_crf(
    image: Tensor | np.ndarray,
    probs: Tensor | np.ndarray,
    iterations: int = 10,
    bilateral_weight: float = 4.0,
    bilateral_xy: float = 121.0,
    bilateral_rgb: float = 5.0,
    gaussian_weight: float = 3.0,
    gaussian_xy: float = 3.0,
    clip: float = 1e-5,
) -> Tensor:
    """Refine class probabilities with the dense CRF (DeepLab's defaults).

    Args:
        image: ``uint8`` RGB ``(H, W, 3)`` or a batch ``(N, H, W, 3)`` (tensor or array).
        probs: probabilities ``(C, H, W)`` or ``(N, C, H, W)`` summing to 1 over ``C``, e.g.
            ``inference(..., output="probs")``. The computation runs on ``probs``' device.
        iterations: mean-field iterations (0 returns the clipped, renormalised input).
        bilateral_weight, bilateral_xy, bilateral_rgb: appearance kernel weight and its spatial
            (pixels) and colour (0-255 intensity) scales.
        gaussian_weight, gaussian_xy: smoothness kernel weight and spatial scale.
        clip: probabilities are clipped below at ``clip`` before ``-log`` (as pydensecrf's
            ``unary_from_softmax``).

    Returns:
        float32 refined probabilities of ``probs``' shape, on ``probs``' device.
    """
    _check_options(iterations, bilateral_weight, bilateral_xy, bilateral_rgb, gaussian_weight, gaussian_xy)
    # One CPU thread, the input checks included: the lattice's many small ops gain little from a
    # second thread on an idle machine and collapse when another process is busy (see
    # lattice.single_threaded).
    device = probs.device if isinstance(probs, Tensor) else torch.device("cpu")
    with torch.no_grad(), single_threaded(device):
        img, p, batched = _check_inputs(image, probs)
        # softmax(-U) with U = -log(clip(p)): the clipped input, renormalised; (N, P, C) channels last.
        p0 = p.clamp(min=clip)
        p0 = (p0 / p0.sum(1, keepdim=True)).flatten(2).transpose(1, 2).contiguous()
        # Both kernels, their weights and normalisations fused into one operator built once.
        lattices, norms = _lattices(img, bilateral_xy, bilateral_rgb, gaussian_xy)
        operator = LatticeOperator(lattices, norms, [bilateral_weight, gaussian_weight])
        # Every message lands in one buffer (the operator's splat has read Q before its slice
        # overwrites it): no fresh 8 MB result per iteration.
        buffer = torch.empty_like(p0)
        q = potts_mean_field(p0, lambda q: operator(q.flatten(0, 1), out=buffer.flatten(0, 1)).view_as(q), iterations)
        out = q.transpose(1, 2).reshape(p.shape)
    return out if batched else out[0]


def dense_crf_naive(
    image: Tensor | np.ndarray,
    probs: Tensor | np.ndarray,
    iterations: int = 10,
    bilateral_weight: float = 4.0,
    bilateral_xy: float = 121.0,
    bilateral_rgb: float = 5.0,
    gaussian_weight: float = 3.0,
    gaussian_xy: float = 3.0,
    clip: float = 1e-5,
) -> Tensor:
    """:func:`dense_crf` with the exact ``O(N^2)`` kernel sums, in float64: the test reference.

    Only for tiny images (it builds ``N x N`` kernel matrices)."""
    img, p, batched = _check_inputs(image, probs)
    _check_options(iterations, bilateral_weight, bilateral_xy, bilateral_rgb, gaussian_weight, gaussian_xy)
    if p.shape[-1] * p.shape[-2] > 4096:
        raise InvalidOptionError(f"dense_crf_naive is a test reference for tiny images; got {tuple(p.shape[-2:])}")
    p = p.double()
    unary = -torch.log(p.clamp(min=clip)).flatten(2).transpose(1, 2)
    bilateral = exact_filter(_features(img, bilateral_xy, bilateral_rgb).double())
    gaussian = exact_filter(_features(img, gaussian_xy, None).double())
    q = mean_field(unary, lambda q: bilateral_weight * bilateral(q) + gaussian_weight * gaussian(q), iterations)
    q = q.softmax(-1)
    out = q.transpose(1, 2).reshape(p.shape).float()
    return out if batched else out[0]


def mean_field(unary: Tensor, message: Message, iterations: int, compatibility: Tensor | None = None) -> Tensor:
    """Mean-field updates; returns the final logits ``-U - pairwise`` (softmax them for ``Q``).

    ``message(Q)`` is ``sum_k w_k K_k Q`` (normalised kernels). ``compatibility`` ``mu (C, C)``
    (``None``: Potts, ``mu = 1 - I``): the pairwise term of label ``l`` is
    ``sum_l' mu(l, l') message(l')``. For Potts that is ``-message(l)`` up to a per-pixel constant,
    which the softmax ignores, so Potts skips the matrix product (as pydensecrf does).

    Shape:
        unary ``(N, P, C)`` -> logits ``(N, P, C)``.
    """
    logits = -unary
    for _ in range(iterations):
        m = message(softmax_last(logits))
        logits = -unary + m if compatibility is None else -unary - m @ compatibility.T
    return logits


def potts_mean_field(p0: Tensor, message: Message, iterations: int) -> Tensor:
    """:func:`mean_field` for Potts compatibility without autograd; returns ``Q`` itself.

    ``Q ~ exp(-U + m) = P0 * exp(m)`` with ``P0 = softmax(-U)`` (the argument), so an iteration is
    one filtering, one ``exp`` and a normalisation. ``m >= 0`` (non-negative kernels and ``Q``),
    so ``exp(m)`` can only overflow for huge messages; those pixels are shifted by their maximum.

    Shape:
        p0 ``(N, P, C)`` -> ``Q`` ``(N, P, C)``.
    """
    q = p0
    ones = p0.new_ones(p0.shape[-1], 1)
    for _ in range(iterations):
        m = message(q)
        if float(m.max()) > 60.0:
            m = m - m.amax(-1, keepdim=True)
        q = m.exp_().mul_(p0)
        # Sum over the few classes as a matrix product, then one multiply: reductions and
        # broadcast divisions over a small last dimension are slow on the CPU (3.8 instead of
        # 4.5 ms per iteration at 480x360 with 11 labels, measured).
        q = q.mul_(torch.matmul(q, ones).reciprocal_())
    return q


def softmax_last(x: Tensor) -> Tensor:
    """Softmax over the last (small) dimension; written out because ``Tensor.softmax(-1)`` with
    only a few classes in the last dimension is several times slower on CPU."""
    e = (x - x.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def _lattices(
    img: Tensor, bilateral_xy: float, bilateral_rgb: float, gaussian_xy: float
) -> tuple[list[PermutohedralLattice], list[Tensor]]:
    """Bilateral and Gaussian lattices and their symmetric normalisers ``D^-1/2 (N*P,)``."""
    bilateral = PermutohedralLattice(_features(img, bilateral_xy, bilateral_rgb))
    ones = torch.ones(img.shape[0] * img.shape[1] * img.shape[2], 1, device=img.device)
    gaussian, gaussian_norm = _gaussian_lattice(*img.shape[:3], float(gaussian_xy), str(img.device))
    return [bilateral, gaussian], [bilateral.filter(ones)[:, 0].add(1e-20).rsqrt(), gaussian_norm]


@lru_cache(maxsize=2)
def _gaussian_lattice(n: int, h: int, w: int, xy: float, device: str) -> tuple[PermutohedralLattice, Tensor]:
    """The smoothness kernel's lattice and normaliser depend only on the batch, the image size and
    the scale: built once and reused for every image of that size (a dataset's images usually
    share one), a third of the CRF's setup time. Two entries: about 60 bytes per pixel each."""
    with torch.no_grad():
        features = _features(torch.empty(n, h, w, 3, dtype=torch.uint8, device=device), xy, None)
        lattice = PermutohedralLattice(features)
        ones = torch.ones(n * h * w, 1, device=device)
        return lattice, lattice.filter(ones)[:, 0].add(1e-20).rsqrt()


def exact_filter(features: Tensor) -> Message:
    """The same operator with the exact kernel ``exp(-|f_i - f_j|^2 / 2)`` (dense ``P x P``)."""
    kernel = torch.exp(-0.5 * torch.cdist(features, features).square())
    norm = kernel.sum(-1, keepdim=True).rsqrt()
    return lambda q: norm * (kernel @ (norm * q))


def _features(image: Tensor, xy_scale: float, rgb_scale: float | None) -> Tensor:
    """Kernel features ``(N, H*W, 2 or 5)``: ``(x, y[, r, g, b])`` divided by their scales."""
    n, h, w, _ = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=image.device, dtype=torch.float32),
        torch.arange(w, device=image.device, dtype=torch.float32),
        indexing="ij",
    )
    pos = torch.stack([xs, ys], -1).reshape(1, h * w, 2).expand(n, -1, -1) / xy_scale
    if rgb_scale is None:
        return pos.contiguous()
    rgb = image.reshape(n, h * w, 3).float() / rgb_scale  # uint8 or 0-255 float
    return torch.cat([pos, rgb], -1)


def _check_inputs(image: Tensor | np.ndarray, probs: Tensor | np.ndarray) -> tuple[Tensor, Tensor, bool]:
    # (NumPy arrays are copied when read-only, e.g. from PIL, which torch would warn about.)
    img, p = (
        torch.as_tensor(x if not isinstance(x, np.ndarray) or x.flags.writeable else x.copy()) for x in (image, probs)
    )
    if img.dtype != torch.uint8 or img.dim() not in (3, 4) or img.shape[-1] != 3:
        raise DataError(f"dense_crf image must be uint8 (H, W, 3) or (N, H, W, 3); got {img.dtype} {tuple(img.shape)}")
    if not p.is_floating_point() or p.dim() != img.dim():
        raise DataError(
            f"dense_crf probs must be float (C, H, W) for an (H, W, 3) image or (N, C, H, W) for (N, H, W, 3); "
            f"got {p.dtype} {tuple(p.shape)} with image {tuple(img.shape)}"
        )
    batched = img.dim() == 4
    if not batched:
        img, p = img[None], p[None]
    if img.shape[:3] != (p.shape[0], *p.shape[2:]):
        raise DataError(
            f"dense_crf image {tuple(img.shape[1:3])} (batch {img.shape[0]}) and probs {tuple(p.shape[2:])} "
            f"(batch {p.shape[0]}) differ in size"
        )
    if p.numel() == 0:
        raise DataError(f"dense_crf got empty probs {tuple(p.shape)}")
    p = p.float()
    sums = p.sum(1)
    # (aminmax: one pass each, where allclose made several temporaries; NaN fails both tests)
    low, (sum_low, sum_high) = float(p.min()), (float(v) for v in torch.aminmax(sums))
    if not (low >= -1e-4 and abs(sum_low - 1) <= 2e-3 + 1e-5 and abs(sum_high - 1) <= 2e-3 + 1e-5):
        raise DataError(
            f"dense_crf probs must be a distribution over classes (dim C): values >= 0 summing to 1; got values in "
            f"[{float(p.min()):.3g}, {float(p.max()):.3g}] and sums in [{float(sums.min()):.4g}, {float(sums.max()):.4g}]"
            " (pass softmax(logits))"
        )
    return img.to(p.device), p, batched


def _check_options(iterations: int, *numbers: float) -> None:
    if not isinstance(iterations, int) or iterations < 0:
        raise InvalidOptionError(f"dense_crf iterations={iterations!r}; expected an integer >= 0")
    names = ("bilateral_weight", "bilateral_xy", "bilateral_rgb", "gaussian_weight", "gaussian_xy")
    for name, value in zip(names, numbers, strict=True):
        positive = name.endswith(("xy", "rgb"))
        if not np.isfinite(value) or value < 0 or (positive and value == 0):
            raise InvalidOptionError(
                f"dense_crf {name}={value!r}; expected a {'positive' if positive else '>= 0'} number"
            )


class DenseCRF(nn.Module):
    """The dense CRF as a differentiable final layer (CRF-as-RNN, https://arxiv.org/abs/1502.03240).

    Mean-field iterations unrolled in autograd, with learnable kernel weights and a learnable
    label compatibility matrix ``mu`` (initialised to Potts, ``1 - I``). The kernel scales stay
    fixed (as in CRF-as-RNN). Gradients reach the input logits, the two weights and ``mu``; the
    image only shapes the kernels.

    Args:
        num_classes: ``C``.
        iterations: unrolled mean-field steps (CRF-as-RNN: 5 in training, 10 at test time).
        bilateral_weight, bilateral_xy, bilateral_rgb, gaussian_weight, gaussian_xy: as in
            :func:`dense_crf`; the weights are initial values.

    Shape:
        logits ``(N, C, H, W)`` and image ``(N, 3, H, W)`` RGB on the 0-255 scale (uint8 or
        float, not normalised) -> refined logits ``(N, C, H, W)`` (train them with cross-entropy).
    """

    def __init__(
        self,
        num_classes: int,
        iterations: int = 5,
        bilateral_weight: float = 4.0,
        bilateral_xy: float = 121.0,
        bilateral_rgb: float = 5.0,
        gaussian_weight: float = 3.0,
        gaussian_xy: float = 3.0,
    ) -> None:
        super().__init__()
        _check_options(iterations, bilateral_weight, bilateral_xy, bilateral_rgb, gaussian_weight, gaussian_xy)
        if num_classes < 2:
            raise InvalidOptionError(f"DenseCRF num_classes={num_classes}; expected >= 2")
        self.iterations = iterations
        self.bilateral_xy, self.bilateral_rgb, self.gaussian_xy = bilateral_xy, bilateral_rgb, gaussian_xy
        self.bilateral_weight = nn.Parameter(torch.tensor(float(bilateral_weight)))
        self.gaussian_weight = nn.Parameter(torch.tensor(float(gaussian_weight)))
        self.compatibility = nn.Parameter(1.0 - torch.eye(num_classes))

    def forward(self, logits: Tensor, image: Tensor) -> Tensor:
        n, c, h, w = logits.shape
        if image.dim() != 4 or image.shape[1] != 3 or (image.shape[0], *image.shape[2:]) != (n, h, w):
            raise DataError(f"DenseCRF image must be (N, 3, H, W) = ({n}, 3, {h}, {w}); got {tuple(image.shape)}")
        if c != self.compatibility.shape[0]:
            raise DataError(f"DenseCRF built for {self.compatibility.shape[0]} classes; logits have {c}")
        rgb = image.detach().to(logits.device).permute(0, 2, 3, 1).float()
        with torch.no_grad():
            lattices, norms = _lattices(rgb, self.bilateral_xy, self.bilateral_rgb, self.gaussian_xy)
            bilateral, gaussian = (
                LatticeOperator([lat], [norm], [1.0]) for lat, norm in zip(lattices, norms, strict=True)
            )

        def message(q: Tensor) -> Tensor:
            flat = q.flatten(0, 1)
            out = self.bilateral_weight * bilateral.apply(flat) + self.gaussian_weight * gaussian.apply(flat)
            return out.view_as(q)

        unary = -logits.flatten(2).transpose(1, 2)
        out = mean_field(unary, message, self.iterations, self.compatibility)
        return out.transpose(1, 2).reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.compatibility.shape[0]}, iterations={self.iterations}, "
            f"bilateral_xy={self.bilateral_xy}, bilateral_rgb={self.bilateral_rgb}, gaussian_xy={self.gaussian_xy}"
        )


class CRFRefined(nn.Module):
    """A segmentation model followed by a trainable :class:`DenseCRF` (CRF-as-RNN end to end).

    Keeps the model contract: ``forward(x)`` takes the same normalised images and returns refined
    logits; ``forward(x, return_aux=True)`` returns the inner model's ``SegmentationOutput`` with
    the refined logits in place of its own (aux outputs unchanged), so the trainer and criterion
    work as they are. The image for the bilateral kernel is recovered from ``x`` with the model's
    ``mean``/``std`` (0-1 RGB scale) and brought to 0-255.

    Shape:
        x ``(N, 3, H, W)`` normalised -> logits ``(N, C, H, W)``.
    """

    def __init__(self, model: nn.Module, crf: DenseCRF) -> None:
        super().__init__()
        self.model, self.crf = model, crf
        for name in ("mean", "std", "num_classes", "class_names", "palette"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))

    def forward(self, x: Tensor, return_aux: bool = False) -> Tensor | tuple:
        out = self.model(x, return_aux=True) if return_aux else self.model(x)
        logits = out[0] if return_aux else out
        mean = torch.tensor(getattr(self, "mean", (0.0, 0.0, 0.0)), device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(getattr(self, "std", (1.0, 1.0, 1.0)), device=x.device).view(1, 3, 1, 1)
        rgb = ((x.detach() * std + mean) * 255.0).clamp(0, 255)
        refined = self.crf(logits, rgb)
        return out._replace(logits=refined) if return_aux else refined

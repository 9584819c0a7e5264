"""High-dimensional Gaussian filtering on the permutohedral lattice, in PyTorch tensor ops.

Adams, Baek and Davis, "Fast High-Dimensional Filtering Using the Permutohedral Lattice",
Eurographics 2010, https://graphics.stanford.edu/papers/permutohedral/. This is the filter the
dense CRF of Krahenbuhl and Koltun (https://arxiv.org/abs/1210.5644) uses for its message passing.

Each point with a ``d``-dimensional feature is embedded in the lattice ``A*_d`` and splatted onto
the ``d + 1`` vertices of its enclosing simplex with barycentric weights; the lattice values are
blurred with ``[1/2, 1, 1/2]`` along each of the ``d + 1`` lattice directions; and each point
reads back (slices) from the same vertices with the same weights. The result approximates
``out_i = sum_j exp(-|f_i - f_j|^2 / 2) v_j`` up to a constant factor (the dense CRF normalises it
away), in ``O(N d^2 + M d C)`` instead of ``O(N^2 C)``.

Everything is vectorised, with no Python loop over points: the simplex search (in chunks of
``(d + 1, chunk)`` rows; tensor ops over a tiny last dimension are slow on the CPU), the hash table
(one sort of mixed-radix integer codes, then ``searchsorted`` for the blur neighbours), splat and
slice (sparse CSR matrix products, vertices numbered in the order the pixels first touch them so
that both walk memory nearly in order) and the blur (two gathers per direction). A
:class:`LatticeOperator` is built once per image and reused for every filtering, and can hold
several kernels (the CRF's bilateral and Gaussian) with their weights and normalisations folded
in, so one mean-field iteration is one splat, one blur and one slice.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import torch
from torch import Tensor

from semseg.errors import InvalidOptionError

_CHUNK = 16384  # points per chunk when building a lattice on the CPU


class PermutohedralLattice:
    """The lattice of a batch of point sets.

    Args:
        features: ``(B, P, d)`` float: ``B`` independent sets (images) of ``P`` points each, already
            divided by their kernel scales. Points of different sets never share a vertex.

    Attributes:
        offsets, weights: ``(B*P, d+1)`` vertex index and barycentric weight of each point's vertices.
        order, starts: the ``B*P * (d+1)`` (point, vertex) pairs sorted by vertex (flat indices into
            ``offsets``) and where each vertex's run starts ``(M+1,)``: the splat matrix in CSR form.
        neighbours: per lattice direction, the two neighbour indices of every vertex ``(M,)``;
            index ``M`` stands for a missing neighbour (a zero row).
    """

    def __init__(self, features: Tensor) -> None:
        if features.dim() != 3:
            raise InvalidOptionError(f"lattice features must be (B, P, d), got shape {tuple(features.shape)}")
        batch, points, d = features.shape
        dp1 = d + 1
        codes, mults = self._codes(features.reshape(batch * points, d).float(), points)
        # One sort gives the hash table (unique codes) and each point's vertex ids.
        sorted_codes, order = _stable_sort(codes.reshape(-1))
        new = torch.ones_like(sorted_codes, dtype=torch.bool)
        new[1:] = sorted_codes[1:] != sorted_codes[:-1]
        # (Tensor.index_select / index_copy_ throughout: advanced indexing is several times slower.)
        seg_start = torch.nonzero(new)[:, 0]
        uniq = sorted_codes.index_select(0, seg_start)
        self.num_vertices = m = uniq.numel()
        neighbours = _neighbours(uniq, mults, d)
        # Renumber the vertices in the order the points first touch them: splat and slice then
        # walk memory nearly in order instead of jumping around (the slice took 4.0 instead of
        # 7.5 ms at 480x360 with 11 labels when measured).
        perm = _stable_sort(order.index_select(0, seg_start) // dp1)[1]  # new id -> old id
        renumber = torch.full((m + 1,), m, dtype=torch.long, device=uniq.device)
        renumber.index_copy_(0, perm, torch.arange(m, device=uniq.device))
        old_id = torch.cumsum(new, 0) - 1
        self.offsets = torch.empty_like(order).index_copy_(0, order, renumber.index_select(0, old_id)).view(-1, dp1)
        self.neighbours = []
        for pair in neighbours:  # new vertex k is old vertex perm[k]; its neighbours get new ids too
            self.neighbours.append(tuple(renumber.index_select(0, nb.index_select(0, perm)) for nb in pair))
        # The splat order by new vertex id: each old run of equal codes moves as a block, by the
        # difference between its new and its old start.
        counts = torch.diff(torch.cat([seg_start, seg_start.new_tensor([order.numel()])])).index_select(0, perm)
        self.starts = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        shift = self.starts.index_select(0, renumber[:m]) - seg_start
        position = torch.arange(order.numel(), device=uniq.device) + shift.index_select(0, old_id)
        self.order = torch.empty_like(order).index_copy_(0, position, order)

    def _codes(self, feats: Tensor, points: int) -> tuple[Tensor, list[int]]:
        """Barycentric weights (into ``self.weights``) and vertex codes ``(N, d+1)`` of all points.

        On the CPU this runs over chunks of points: small temporaries are reused by the memory
        allocator, while whole-image ones would cost a fresh, page-faulting allocation per op
        (about 2x slower at 480x360).
        """
        n, d = feats.shape
        # Elevated coordinates reach about 2d(d+1) max|f| and must stay exact integers in float32.
        if n and float(feats.abs().max()) * 2 * d * (d + 1) > 2**22:
            raise InvalidOptionError(
                f"lattice features up to {float(feats.abs().max()):.3g} are too large for float32 keys "
                "(kernel scales too small?)"
            )
        chunk = n if feats.is_cuda else _CHUNK
        feats_t = feats.T.contiguous()
        self.weights = feats.new_empty(n, d + 1)
        rem0 = torch.empty(d, n, dtype=torch.int32, device=feats.device)
        rank = torch.empty(d, n, dtype=torch.uint8, device=feats.device)
        for s in range(0, n, chunk):
            w, rem0[:, s : s + chunk], rank[:, s : s + chunk] = _embed(feats_t[:, s : s + chunk])
            self.weights[s : s + chunk] = w.T
        low = rem0.amin(1).long() - 2 * (d + 1)
        radix = rem0.amax(1).long() + 2 * (d + 1) - low + 1
        mults = [1]
        for r in radix.tolist():
            mults.append(mults[-1] * r)
        if mults[-1] * (n // points) >= 2**62:
            raise InvalidOptionError(
                "permutohedral lattice keys overflow int64: the features span too wide a range (kernel scales too small?)"
            )
        codes = torch.empty(n, d + 1, dtype=torch.long, device=feats.device)
        for s in range(0, n, chunk):
            image = torch.arange(s, min(s + chunk, n), device=feats.device) // points
            codes[s : s + chunk] = _vertex_codes(rem0[:, s : s + chunk], rank[:, s : s + chunk], image, low, mults).T
        return codes, mults

    def filter(self, values: Tensor) -> Tensor:
        """Gaussian-filter ``values (B*P, C)`` with gathers (for one-off use such as normalisers)."""
        lat = values.new_zeros(self.num_vertices + 1, values.shape[1])
        lat.index_add_(0, self.offsets.reshape(-1), (self.weights[..., None] * values[:, None, :]).flatten(0, 1))
        lat = _blur(lat, [(pair, self.num_vertices) for pair in self.neighbours])
        gathered = lat.index_select(0, self.offsets.reshape(-1)).view(*self.offsets.shape, -1)
        return (gathered * self.weights[..., None]).sum(1)


@contextmanager
def single_threaded(device: torch.device | str = "cpu") -> Iterator[None]:
    """Run PyTorch CPU ops in one intra-op thread inside the block (restored afterwards).

    The lattice is thousands of small ops (a few ms each at most): with OpenMP each one is a fork
    and a barrier, and when another process holds a core every barrier waits for a descheduled
    thread (OpenMP threads spin before they sleep), which made the dense CRF 6-12x slower on a
    busy 2-core machine while one thread barely changed. A no-op on CUDA. ``set_num_threads`` is
    process-wide: other Python threads running torch ops meanwhile get one thread too.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def _stable_sort(keys: Tensor) -> tuple[Tensor, Tensor]:
    """``torch.sort(keys, stable=True)`` for 1-D int64 ``keys``: sorted keys and their positions.

    On the CPU, where every key fits with its position in 62 bits, the key and the position are
    packed into one int64 (key high, position low) and sorted with NumPy, whose int64 sort is
    vectorised (AVX-512/AVX2): the same result (ties keep their order, as the positions break
    them), measured 5-10x faster than ``torch.sort`` for the million codes of a 480x360 image.
    """
    n = keys.numel()
    if keys.is_cuda or n < 2:
        return torch.sort(keys, stable=True)
    low, high = (int(v) for v in torch.aminmax(keys))
    bits = max(n - 1, 1).bit_length()
    if low < 0 or high.bit_length() + bits > 62:
        return torch.sort(keys, stable=True)
    packed = torch.bitwise_left_shift(keys, bits).bitwise_or_(torch.arange(n, device=keys.device))
    packed.numpy().sort()  # in place, on the tensor's memory
    return torch.bitwise_right_shift(packed, bits), packed.bitwise_and_((1 << bits) - 1)


def _neighbours(uniq: Tensor, mults: list[int], d: int) -> list[tuple[Tensor, Tensor]]:
    """Per direction ``j``, the indices into ``uniq`` (sorted codes) of each vertex's two neighbours.

    Along direction j a neighbour key is the key -1 everywhere and +d at j (the code is linear in
    the key, so its code is the vertex code plus a constant); the opposite neighbour is found by
    inverting that map. Missing neighbours get index ``M``.
    """
    m = uniq.numel()
    step = sum(mults[:d])
    everyone = torch.arange(m, device=uniq.device)
    out = []
    for j in range(d + 1):
        cand = uniq + ((d + 1) * mults[j] - step if j < d else -step)
        pos = torch.searchsorted(uniq, cand).clamp_(max=m - 1)
        found = uniq.index_select(0, pos) == cand
        n1 = torch.where(found, pos, m)
        hits = torch.nonzero(found)[:, 0]
        n2 = torch.full_like(n1, m).index_copy_(0, pos.index_select(0, hits), everyone.index_select(0, hits))
        out.append((n1, n2))
    return out


class LatticeOperator:
    """``v -> sum_k w_k s_k * (S_k^T B_k S_k (s_k * v))`` over kernels ``k``, as one splat, blur, slice.

    ``S_k`` splats onto lattice ``k``, ``B_k`` is its blur and ``s_k (B*P,)`` a per-point scale (the
    CRF's symmetric normalisation ``D^-1/2``). The lattices are stacked into one vertex array,
    those with more directions first, so that direction ``j`` only touches a prefix of the rows.

    Shape:
        ``(B*P, C)`` -> ``(B*P, C)``.
    """

    def __init__(self, lattices: list[PermutohedralLattice], scales: list[Tensor], weights: list[float]) -> None:
        parts = sorted(zip(lattices, scales, weights, strict=True), key=lambda p: -len(p[0].neighbours))
        self.total = total = sum(lat.num_vertices for lat, _, _ in parts)
        n = lattices[0].offsets.shape[0]
        slice_cols, slice_vals, splat_cols, splat_vals, starts, start, entries = [], [], [], [], [], 0, 0
        self.neighbours, self.prefix = [], []
        for lat, scale, weight in parts:
            vals = lat.weights * (scale[:, None] * math.sqrt(weight))
            slice_cols.append(lat.offsets + start)
            slice_vals.append(vals)
            splat_cols.append(torch.div(lat.order, lat.offsets.shape[1], rounding_mode="floor"))
            splat_vals.append(vals.reshape(-1).index_select(0, lat.order))
            starts.append(lat.starts[:-1] + entries)
            entries += lat.order.numel()
            for j, pair in enumerate(lat.neighbours):
                shifted = [torch.where(nb < lat.num_vertices, nb + start, total) for nb in pair]
                if j == len(self.neighbours):
                    self.neighbours.append(shifted)
                    self.prefix.append(start + lat.num_vertices)
                else:
                    self.neighbours[j] = [torch.cat([a, b]) for a, b in zip(self.neighbours[j], shifted, strict=True)]
                    self.prefix[j] = start + lat.num_vertices
            start += lat.num_vertices
        crow = torch.cat([*starts, starts[0].new_tensor([entries, entries])])  # the zero row ``total`` is empty
        self.splat_matrix = _csr(crow, torch.cat(splat_cols), torch.cat(splat_vals), size=(total + 1, n))
        cols, vals = torch.cat(slice_cols, 1), torch.cat(slice_vals, 1)
        rows = torch.arange(0, cols.numel() + 1, cols.shape[1], device=cols.device)
        self.slice_matrix = _csr(rows, cols.reshape(-1), vals.reshape(-1), size=(n, total + 1))

    def __call__(self, values: Tensor, reverse: bool = False) -> Tensor:
        """Apply to ``values (B*P, C)``; ``reverse`` applies the transpose (blur directions reversed).

        Splat and slice are transposes of each other (with the scales and ``sqrt(w_k)`` on both)
        and each directional blur is symmetric, so the operator's transpose is the same pipeline
        with the directions in reverse order: the backward pass of :class:`LatticeFilter`.
        """
        if self.slice_matrix.dtype != values.dtype:
            self.slice_matrix = self.slice_matrix.to(values.dtype)
            self.splat_matrix = self.splat_matrix.to(values.dtype)
        lat = torch.sparse.mm(self.splat_matrix, values)  # row ``total`` stays zero: no point maps there
        steps = list(zip(self.neighbours, self.prefix, strict=True))
        lat = _blur(lat, steps[::-1] if reverse else steps)
        return torch.sparse.mm(self.slice_matrix, lat)

    def apply(self, values: Tensor) -> Tensor:
        """Differentiable ``self(values)`` (with respect to ``values``)."""
        return LatticeFilter.apply(values, self)


class LatticeFilter(torch.autograd.Function):
    """Autograd wrapper: the gradient of a linear filter is its transpose applied to the gradient."""

    @staticmethod
    def forward(ctx, values: Tensor, operator: LatticeOperator) -> Tensor:  # type: ignore[override]
        ctx.operator = operator
        return operator(values)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return ctx.operator(grad.contiguous(), reverse=True), None


def _blur(lat: Tensor, steps: list[tuple[list[Tensor] | tuple[Tensor, Tensor], int]]) -> Tensor:
    """``v + (v[n1] + v[n2]) / 2`` along each direction, for the first ``rows`` rows of that step
    (the others have no such direction and keep their values); the last row stays zero."""
    out = torch.empty_like(lat)
    out[-1] = 0
    for (n1, n2), rows in steps:
        body = out[:rows]
        torch.index_select(lat, 0, n1, out=body)
        body.add_(lat.index_select(0, n2)).mul_(0.5).add_(lat[:rows])
        out[rows:-1] = lat[rows:-1]
        lat, out = out, lat
    return lat


def _embed(feats: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Enclosing simplex of every point of ``feats (d, N)``.

    Returns barycentric weights ``(d+1, N)``, and of the first ``d`` coordinates the remainder-0
    point ``rem0 (d, N)`` (integer-valued floats) and the rank ``(d, N)``, following section 3 of
    Adams et al.: elevate onto the hyperplane ``H_d`` with the matrix ``E`` (scaled so the blur has
    unit standard deviation), round to the nearest remainder-0 point, sort the residual to find
    the simplex. Rows of ``N`` values throughout: tensor ops over a tiny last dimension are slow.
    """
    d, n = feats.shape
    dp1 = d + 1
    inv_std = math.sqrt(2.0 / 3.0) * dp1
    cf = feats * feats.new_tensor([inv_std / math.sqrt((i + 1) * (i + 2)) for i in range(d)])[:, None]
    elevated = feats.new_empty(dp1, n)
    suffix = torch.zeros_like(cf[0])  # sum of cf[j:]
    for j in range(d, 0, -1):
        elevated[j] = suffix - j * cf[j - 1]
        suffix = suffix + cf[j - 1]
    elevated[0] = suffix
    # Nearest point with every coordinate a multiple of d + 1 (ties round down).
    rem0 = torch.ceil(elevated * (1.0 / dp1) - 0.5) * dp1
    total = rem0.sum(0) * (1.0 / dp1)
    # Rank of each residual in decreasing order, ties to the earlier coordinate: over all pairs
    # i < j, rank[i] += [r_i < r_j] and rank[j] += [r_i >= r_j]. As one matrix product over pairs:
    # rank = sign @ [r_i < r_j] + (number of pairs in which the coordinate comes second).
    # (Float arithmetic and small matrix products throughout: on the CPU, comparisons that make
    # bools, dtype conversions and row gathers cost several times more than they should.)
    diff_matrix, sign, base = _pairs(dp1, feats.device)
    smaller = torch.mm(diff_matrix, elevated - rem0).neg_().sign_().clamp_(min=0)  # [r_i < r_j] per pair
    rank = torch.addmm(base, sign, smaller).add_(total)
    # Bring the point back onto the plane where the rounded coordinates do not sum to zero.
    shift = torch.floor((rank + 0.5) * (1.0 / dp1)) * dp1
    rank -= shift
    rem0 -= shift
    frac = (elevated - rem0) * (1.0 / dp1)
    pos = d - rank.long()
    bary = feats.new_zeros(dp1 + 1, n)
    bary.scatter_add_(0, pos, frac)
    bary.scatter_add_(0, pos + 1, -frac)
    bary[0] += 1.0 + bary[dp1]
    return bary[:dp1], rem0[:d], rank[:d]


@cache
def _pairs(k: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """For the coordinate pairs ``i < j`` of ``k``: the ``(pairs, k)`` matrix giving ``r_i - r_j``,
    the ``(k, pairs)`` matrix with +1 at ``(i, pair)`` and -1 at ``(j, pair)``, and ``(k, 1)`` how
    often each coordinate comes second."""
    first, second = torch.triu_indices(k, k, 1)
    pairs = torch.arange(first.numel())
    diff = torch.zeros(first.numel(), k)
    diff[pairs, first], diff[pairs, second] = 1.0, -1.0
    base = torch.arange(k, dtype=torch.float32)[:, None]
    return diff.to(device), diff.T.contiguous().to(device), base.to(device)


def _vertex_codes(rem0: Tensor, rank: Tensor, image: Tensor, low: Tensor, mults: list[int]) -> Tensor:
    """Mixed-radix int64 codes ``(d+1, n)`` of the simplex vertices of ``n`` points.

    Vertex ``r`` has key ``rem0 + r - (d+1) [rank > d - r]`` (first ``d`` coordinates, digit ``i``
    offset by ``low[i]``; the image index is the last digit, so images never share a vertex).
    Neighbours shift a key by at most ``d``; ``low`` and the radices leave ``d + 1`` spare values
    on both sides of every digit, so neighbour codes never alias another vertex.
    """
    d, n = rem0.shape
    digits = torch.tensor(mults[:d], device=rem0.device)[:, None]
    base = image * mults[d] + ((rem0.long() - low[:, None]) * digits).sum(0)
    # wrap[r] = sum of the digits of coordinates with rank > d - r: a suffix sum over ranks.
    by_rank = torch.zeros(d + 2, n, dtype=torch.long, device=rem0.device)
    by_rank.scatter_(0, rank.long(), digits.expand(d, n))
    codes = torch.empty(d + 1, n, dtype=torch.long, device=rem0.device)
    codes[0] = base
    wrap = by_rank[d + 1]  # the zero row
    for r in range(1, d + 1):
        wrap = wrap + by_rank[d + 1 - r]  # digits of the coordinates ranked d + 1 - r .. d
        codes[r] = base + r * sum(mults[:d]) - (d + 1) * wrap
    return codes


def _csr(crow: Tensor, col: Tensor, values: Tensor, size: tuple[int, int]) -> Tensor:
    """A CSR matrix, without PyTorch's one-time "beta" notice (the indices are valid by construction),
    with int32 indices where they fit (about 10% faster products than int64)."""
    if max(*size, col.numel()) < 2**31:
        crow, col = crow.to(torch.int32), col.to(torch.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)

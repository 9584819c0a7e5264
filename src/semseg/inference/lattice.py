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
(the points grouped by simplex with one sort of compact keys, then one sort of the mixed-radix
vertex codes of the simplices only, and ``searchsorted`` for the blur neighbours), splat and slice
(sparse CSR matrix products, vertices numbered in the order the pixels first touch them so that
both walk memory nearly in order) and the blur (one CSR product per direction on the CPU, two
gathers on CUDA). Sorts, searches and integer scatters run in NumPy on the CPU, where its
vectorised kernels beat torch's several times for these int64 arrays. A
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

import numpy as np
import torch
from torch import Tensor

from semseg.errors import InvalidOptionError

_CHUNK = 16384  # points per chunk when building a lattice on the CPU
_KEY_LIMIT = 2**62  # simplex keys below this are sorted as one int64 (a test lowers it)


class PermutohedralLattice:
    """The lattice of a batch of point sets.

    Args:
        features: ``(B, P, d)`` float: ``B`` independent sets (images) of ``P`` points each, already
            divided by their kernel scales. Points of different sets never share a vertex.

    Attributes:
        offsets, weights: ``(B*P, d+1)`` vertex index and barycentric weight of each point's vertices.
        order, starts: the ``B*P * (d+1)`` (point, vertex) pairs sorted by vertex (flat indices into
            ``offsets``) and where each vertex's run starts ``(M+1,)``: the splat matrix in CSR form.
        splat_points, splat_weights: the point and the weight of each pair in that order.
        neighbours: per lattice direction, the two neighbour indices of every vertex ``(M,)``;
            index ``M`` stands for a missing neighbour (a zero row).
    """

    def __init__(self, features: Tensor) -> None:
        if features.dim() != 3:
            raise InvalidOptionError(f"lattice features must be (B, P, d), got shape {tuple(features.shape)}")
        batch, points, d = features.shape
        dp1 = d + 1
        n = batch * points
        dev = features.device
        rem0, rank, low, mults = self._embed_points(features.reshape(n, d).float(), batch)
        # 1. Group the points by simplex (equal remainder-0 point and rank): a photo's N points
        # fall into far fewer simplices (63k for 173k pixels at 480x360 with DeepLab's bilateral
        # kernel), so the vertex codes are computed and sorted per simplex, (d+1) S instead of
        # (d+1) N of them (one sort of N simplex keys replaces the sort of (d+1) N vertex codes).
        image = torch.arange(n, device=dev) // points
        sorted_pts, simplex_new = _group_simplices(rem0, rank, image)
        seg = torch.nonzero(simplex_new)[:, 0]
        # Simplices numbered in the order the points first touch them (each run's first point is
        # its smallest: the sort is stable), so that vertices can be numbered the same way below.
        first_pt, s_perm = _stable_sort(sorted_pts.index_select(0, seg))
        num_simplices = seg.numel()
        s_renumber = _inverse_permutation(s_perm)
        # (N,) simplex id of every point
        simplex = _scatter(sorted_pts, s_renumber.index_select(0, torch.cumsum(simplex_new, 0) - 1))
        # 2. The (d+1) vertex codes of every simplex, deduplicated with one sort.
        codes = _vertex_codes(
            rem0.index_select(1, first_pt), rank.index_select(1, first_pt), image.index_select(0, first_pt), low, mults
        )
        sorted_codes, inc_order = _stable_sort(codes.T.reshape(-1))  # incidences (simplex, r), flat s*(d+1)+r
        new = torch.ones_like(sorted_codes, dtype=torch.bool)
        new[1:] = sorted_codes[1:] != sorted_codes[:-1]
        # (Tensor.index_select / index_copy_ throughout: advanced indexing is several times slower.)
        vseg = torch.nonzero(new)[:, 0]
        uniq = sorted_codes.index_select(0, vseg)
        self.num_vertices = m = uniq.numel()
        neighbours = _neighbours(uniq, mults, d)
        # Renumber the vertices in the order the points first touch them (the first incidence of a
        # vertex is in its first simplex, whose first point is the vertex's first point): splat and
        # slice then walk memory nearly in order instead of jumping around (the slice took 4.0
        # instead of 7.5 ms at 480x360 with 11 labels when measured). The numbering changes no
        # value: every sum below runs in point order whatever the vertex ids.
        perm = _stable_sort(inc_order.index_select(0, vseg))[1]  # new id -> old id
        renumber = torch.cat([_inverse_permutation(perm), perm.new_tensor([m])])  # missing (m) stays m
        # int32 indices where they fit: half the memory traffic, about 10% faster sparse products.
        index = torch.int32 if n * dp1 < 2**31 else torch.long
        vid = _scatter(inc_order, renumber.index_select(0, torch.cumsum(new, 0) - 1))  # vertex of each incidence
        self.offsets = vid.to(index).view(num_simplices, dp1).index_select(0, simplex)
        self.neighbours = []
        for pair in neighbours:  # new vertex k is old vertex perm[k]; its neighbours get new ids too
            self.neighbours.append(tuple(renumber.index_select(0, nb.index_select(0, perm)).to(index) for nb in pair))
        # 3. The splat matrix in CSR form: the (point, vertex) pairs sorted by vertex, ties (the
        # points of one vertex) in point order.
        self.order = _argsort_small(self.offsets.reshape(-1), m).to(index)
        counts = torch.bincount(self.offsets.reshape(-1), minlength=m)
        self.starts = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]).to(index)
        self.splat_points = _floordiv(self.order, dp1)  # the point of each sorted pair
        self.splat_weights = self.weights.reshape(-1).index_select(0, self.order)

    def _embed_points(self, feats: Tensor, batch: int) -> tuple[Tensor, Tensor, Tensor, list[int]]:
        """Barycentric weights (into ``self.weights (N, d+1)``), remainder-0 points ``(d, N)``
        int32, ranks ``(d, N)`` uint8, and the code digits' offsets ``low (d,)`` and place values.

        On the CPU this runs over chunks of points: small temporaries are reused by the memory
        allocator, while whole-image ones would cost a fresh, page-faulting allocation per op
        (about 2x slower at 480x360).
        """
        n, d = feats.shape
        # Elevated coordinates reach about 2d(d+1) max|f| and must stay exact integers in float32.
        largest = max(abs(float(v)) for v in torch.aminmax(feats)) if n else 0.0
        if largest * 2 * d * (d + 1) > 2**22:
            raise InvalidOptionError(
                f"lattice features up to {largest:.3g} are too large for float32 keys (kernel scales too small?)"
            )
        chunk = n if feats.is_cuda else _CHUNK
        self.weights = feats.new_empty(n, d + 1)
        rem0 = torch.empty(d, n, dtype=torch.int32, device=feats.device)
        rank = torch.empty(d, n, dtype=torch.uint8, device=feats.device)
        for s in range(0, n, chunk):
            # (the transposed view costs nothing: only a matrix product reads it)
            rem0[:, s : s + chunk], rank[:, s : s + chunk] = _embed(feats[s : s + chunk].T, self.weights[s : s + chunk])
        low = rem0.amin(1).long() - 2 * (d + 1)
        radix = rem0.amax(1).long() + 2 * (d + 1) - low + 1
        mults = [1]
        for r in radix.tolist():
            mults.append(mults[-1] * r)
        if mults[-1] * batch >= 2**62:
            raise InvalidOptionError(
                "permutohedral lattice keys overflow int64: the features span too wide a range (kernel scales too small?)"
            )
        return rem0, rank, low, mults

    def filter(self, values: Tensor) -> Tensor:
        """Gaussian-filter ``values (B*P, C)`` (for one-off use such as normalisers)."""
        m, (n, dp1) = self.num_vertices, self.offsets.shape
        splat = _csr(self.starts, self.splat_points, self.splat_weights.to(values.dtype), size=(m, n))
        lat = torch.cat([torch.sparse.mm(splat, values), values.new_zeros(1, values.shape[1])])
        lat = _blur(lat, [(pair, m) for pair in self.neighbours])
        rows = torch.arange(0, n * dp1 + 1, dp1, dtype=self.offsets.dtype, device=values.device)
        slice_ = _csr(rows, self.offsets.reshape(-1), self.weights.reshape(-1).to(values.dtype), size=(n, m + 1))
        return torch.sparse.mm(slice_, lat)


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
    Wider keys take two such sorts, least significant part first (a stable LSD radix sort with two
    digits): the vertex codes of a 480x360 image (52 bits) sorted in a third of ``torch.sort``'s time.
    """
    n = keys.numel()
    if keys.is_cuda or n < 2:
        return torch.sort(keys, stable=True)
    low, high = (int(v) for v in torch.aminmax(keys))
    bits = max(n - 1, 1).bit_length()
    room = 62 - bits  # key bits that fit beside a position
    if low < 0 or high.bit_length() > 2 * room:
        return torch.sort(keys, stable=True)
    if high.bit_length() <= room:
        packed = _packed_sort(keys, bits)
        return torch.bitwise_right_shift(packed, bits), packed.bitwise_and_((1 << bits) - 1)
    by_low = _packed_sort(keys.bitwise_and((1 << room) - 1), bits).bitwise_and_((1 << bits) - 1)
    by_high = _packed_sort(torch.bitwise_right_shift(keys.index_select(0, by_low), room), bits)
    order = by_low.index_select(0, by_high.bitwise_and_((1 << bits) - 1))
    return keys.index_select(0, order), order


def _packed_sort(keys: Tensor, bits: int) -> Tensor:
    """``(key << bits) | position`` sorted (NumPy's in-place int64 sort on the tensor's memory)."""
    packed = torch.bitwise_left_shift(keys, bits).bitwise_or_(torch.arange(keys.numel(), device=keys.device))
    packed.numpy().sort()
    return packed


def _argsort_small(keys: Tensor, bound: int) -> Tensor:
    """Stable argsort of 1-D integer ``keys`` in ``[0, bound)`` (vertex ids).

    On the CPU with ``bound <= 2^32`` this is NumPy's radix sort (its stable sort of 16-bit
    keys, once or twice: low half, then high half), linear in the number of keys: measured 8 ms
    instead of 16 ms for the million (point, vertex) pairs of a 480x360 image.
    """
    if keys.is_cuda or bound > 2**32:
        return _stable_sort(keys)[1]
    a = keys.numpy()
    order = np.argsort(a.astype(np.uint16), kind="stable")
    if bound > 2**16:
        order = order[np.argsort((a >> 16).astype(np.uint16)[order], kind="stable")]
    return torch.from_numpy(order.astype(np.int64, copy=False))


def _inverse_permutation(perm: Tensor) -> Tensor:
    """``inv`` with ``inv[perm[i]] = i`` (NumPy's scatter on the CPU: 2x faster than index_copy_)."""
    if perm.is_cuda:
        return torch.empty_like(perm).index_copy_(0, perm, torch.arange(perm.numel(), device=perm.device))
    out = np.empty(perm.numel(), dtype=np.int64)
    out[perm.numpy()] = np.arange(perm.numel())
    return torch.from_numpy(out)


def _scatter(index: Tensor, values: Tensor) -> Tensor:
    """``out[index[i]] = values[i]`` for a permutation ``index`` (NumPy on the CPU)."""
    if index.is_cuda:
        return torch.empty_like(values).index_copy_(0, index, values)
    out = np.empty(values.numel(), dtype=values.numpy().dtype)
    out[index.numpy()] = values.numpy()
    return torch.from_numpy(out)


def _floordiv(values: Tensor, k: int) -> Tensor:
    """``values // k`` for non-negative integers (NumPy on the CPU: int64 division in torch took
    10 ms for a million values, NumPy's 1 ms)."""
    if values.is_cuda:
        return torch.div(values, k, rounding_mode="floor")
    return torch.from_numpy(values.numpy() // k)


def _searchsorted(sorted_values: Tensor, queries: Tensor) -> Tensor:
    """``torch.searchsorted`` (NumPy's on the CPU: 3x faster for the sorted queries used here)."""
    if sorted_values.is_cuda:
        return torch.searchsorted(sorted_values, queries)
    return torch.from_numpy(np.searchsorted(sorted_values.numpy(), queries.numpy()))


def _group_simplices(rem0: Tensor, rank: Tensor, image: Tensor) -> tuple[Tensor, Tensor]:
    """The points ordered by enclosing simplex: positions ``(N,)`` (stable: each simplex's points
    in increasing order) and ``(N,)`` bool, true where a new simplex starts.

    A simplex is its remainder-0 point and its rank permutation. The key packs, in mixed radix:
    the rank code (base ``d + 1``), then each coordinate of the remainder-0 point divided by
    ``d + 1`` (they are all multiples of it: the digits span ``(d+1)^d`` fewer values than in the
    vertex codes, which keeps the key small enough for the fast packed sort), then the image.
    Where the key would reach ``_KEY_LIMIT``, two stable sorts (by rank code, then by the rest)
    give the same order.
    """
    d = rem0.shape[0]
    dp1 = d + 1
    if rem0.is_cuda:
        digits = torch.div(rem0 - rem0.amin(1, keepdim=True), dp1, rounding_mode="floor").long()
    else:  # NumPy's int32 division: torch's integer division is several times slower on the CPU
        r = rem0.numpy()
        digits = torch.from_numpy(((r - r.min(1, keepdims=True)) // dp1).astype(np.int64))
    spans = (digits.amax(1) + 1).tolist()
    place = [1]
    for span in spans:
        place.append(place[-1] * span)
    rank_code = torch.mm(rank.new_tensor([[float(dp1**i) for i in range(d)]], dtype=torch.float32), rank.float())
    rank_code = rank_code[0].long()  # exact: below (d+1)^d
    rest = (digits * digits.new_tensor(place[:d])[:, None]).sum(0).add_(image * place[d])
    if (int(image[-1]) + 1) * place[d] * dp1**d < _KEY_LIMIT:
        sorted_keys, order = _stable_sort(rest.mul_(dp1**d).add_(rank_code))
        new = torch.ones_like(sorted_keys, dtype=torch.bool)
        new[1:] = sorted_keys[1:] != sorted_keys[:-1]
        return order, new
    by_rank = _stable_sort(rank_code)[1]
    sorted_rest, by_rest = _stable_sort(rest.index_select(0, by_rank))
    order = by_rank.index_select(0, by_rest)
    sorted_rank = rank_code.index_select(0, order)
    new = torch.ones_like(sorted_rest, dtype=torch.bool)
    new[1:] = (sorted_rest[1:] != sorted_rest[:-1]) | (sorted_rank[1:] != sorted_rank[:-1])
    return order, new


def _neighbours(uniq: Tensor, mults: list[int], d: int) -> list[tuple[Tensor, Tensor]]:
    """Per direction ``j``, the indices into ``uniq`` (sorted codes) of each vertex's two neighbours.

    Along direction j a neighbour key is the key -1 everywhere and +d at j (the code is linear in
    the key, so its code is the vertex code plus a constant); the opposite neighbour is found by
    inverting that map. Missing neighbours get index ``M``.
    """
    m = uniq.numel()
    step = sum(mults[:d])
    if not uniq.is_cuda:  # the same in NumPy: its searchsorted and scatter are several times faster here
        u, everyone, out_np = uniq.numpy(), np.arange(m), []
        for j in range(d + 1):
            cand = u + ((d + 1) * mults[j] - step if j < d else -step)
            pos = np.minimum(np.searchsorted(u, cand), m - 1)
            found = u[pos] == cand
            n2 = np.full(m, m)
            n2[pos[found]] = everyone[found]
            out_np.append((torch.from_numpy(np.where(found, pos, m)), torch.from_numpy(n2)))
        return out_np
    everyone = torch.arange(m, device=uniq.device)
    out = []
    for j in range(d + 1):
        cand = uniq + ((d + 1) * mults[j] - step if j < d else -step)
        pos = _searchsorted(uniq, cand).clamp_(max=m - 1)
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
        small = max(total + 1, n, sum(lat.order.numel() for lat in lattices)) < 2**31
        index = torch.int32 if small else torch.long  # int32 CSR indices: about 10% faster products
        slice_cols, slice_vals, splat_cols, splat_vals, starts, start, entries = [], [], [], [], [], 0, 0
        self.neighbours, self.prefix = [], []
        for lat, scale, weight in parts:
            vals = lat.weights * (scale[:, None] * math.sqrt(weight))
            slice_cols.append(lat.offsets.to(index) + start)
            slice_vals.append(vals)
            splat_cols.append(lat.splat_points.to(index))
            splat_vals.append(lat.splat_weights * (scale * math.sqrt(weight)).index_select(0, lat.splat_points))
            starts.append(lat.starts[:-1].to(index) + entries)
            entries += lat.order.numel()
            for j, pair in enumerate(lat.neighbours):
                shifted = [torch.where(nb < lat.num_vertices, nb + start, total).to(index) for nb in pair]
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
        rows = torch.arange(0, cols.numel() + 1, cols.shape[1], dtype=index, device=cols.device)
        self.slice_matrix = _csr(rows, cols.reshape(-1), vals.reshape(-1), size=(n, total + 1))
        # On the CPU each directional blur is a CSR product too (3 entries a row: 1/2, 1, 1/2; a
        # missing neighbour points at the zero row), one pass where the gathers took four:
        # measured 3.3 instead of 5.5 ms per iteration at 480x360, for 2 ms to build.
        self.blur_matrices = []
        if cols.device.type == "cpu":
            for (n1, n2), rows_j in zip(self.neighbours, self.prefix, strict=True):
                me = torch.arange(rows_j, dtype=index, device=cols.device)
                blur_cols = torch.stack([n1, me, n2], 1).reshape(-1)
                blur_vals = vals.new_tensor([0.5, 1.0, 0.5]).repeat(rows_j)
                crow_j = torch.arange(0, 3 * rows_j + 1, 3, dtype=index, device=cols.device)
                self.blur_matrices.append(_csr(crow_j, blur_cols, blur_vals, size=(rows_j, total + 1)))
        self._buffers: tuple[Tensor, Tensor] | None = None

    def __call__(self, values: Tensor, reverse: bool = False, out: Tensor | None = None) -> Tensor:
        """Apply to ``values (B*P, C)``; ``reverse`` applies the transpose (blur directions reversed).

        Splat and slice are transposes of each other (with the scales and ``sqrt(w_k)`` on both)
        and each directional blur is symmetric, so the operator's transpose is the same pipeline
        with the directions in reverse order: the backward pass of :class:`LatticeFilter`.

        ``out`` (``(B*P, C)``, may be ``values`` itself: the splat reads it before the slice
        writes) receives the result. The lattice rows live in two buffers kept between calls (an
        operator is not for concurrent use): on the CPU, sparse products into existing memory skip
        the zero-fill and copy of ``torch.sparse.mm``'s fresh result, and reused buffers skip the
        page faults of fresh large allocations (1.7 ms of 7.2 per splat + slice at 480x360).
        """
        if self.slice_matrix.dtype != values.dtype:
            self.slice_matrix = self.slice_matrix.to(values.dtype)
            self.splat_matrix = self.splat_matrix.to(values.dtype)
            self.blur_matrices = [m.to(values.dtype) for m in self.blur_matrices]
        steps = list(zip(self.neighbours, self.prefix, strict=True))
        if reverse:
            steps = steps[::-1]
        if values.is_cuda:  # (sparse products with out= are only used where measured: the CPU)
            lat = _blur(torch.sparse.mm(self.splat_matrix, values), steps)
            result = torch.sparse.mm(self.slice_matrix, lat)
            return result if out is None else out.copy_(result)
        shape = (self.total + 1, values.shape[1])
        if self._buffers is None or self._buffers[0].shape != shape or self._buffers[0].dtype != values.dtype:
            self._buffers = (values.new_empty(shape), values.new_empty(shape))
        lat, spare = self._buffers
        # beta=0: the buffer's old contents are never read. Row ``total`` (no entries) comes out zero.
        torch.addmm(lat, self.splat_matrix, values, beta=0, out=lat)
        # Each B_j is symmetric (n2 inverts n1), so the transpose runs the same matrices reversed.
        for blur in self.blur_matrices[::-1] if reverse else self.blur_matrices:
            rows = blur.shape[0]
            torch.addmm(spare[:rows], blur, lat, beta=0, out=spare[:rows])
            spare[rows:] = lat[rows:]  # rows without this direction, and the zero row
            lat, spare = spare, lat
        if out is None:
            out = values.new_empty(values.shape[0], shape[1])
        return torch.addmm(out, self.slice_matrix, lat, beta=0, out=out)

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


def _blur(
    lat: Tensor, steps: list[tuple[list[Tensor] | tuple[Tensor, Tensor], int]], spare: Tensor | None = None
) -> Tensor:
    """``v + (v[n1] + v[n2]) / 2`` along each direction, for the first ``rows`` rows of that step
    (the others have no such direction and keep their values); the last row stays zero. ``lat``
    and ``spare`` (a buffer of its shape, or ``None``) take turns; the result is one of them."""
    out = torch.empty_like(lat) if spare is None else spare
    out[-1] = 0
    for (n1, n2), rows in steps:
        body = out[:rows]
        torch.index_select(lat, 0, n1, out=body)
        body.add_(lat.index_select(0, n2))
        torch.add(lat[:rows], body, alpha=0.5, out=body)  # one pass fewer than mul_ then add_; same bits
        out[rows:-1] = lat[rows:-1]
        lat, out = out, lat
    return lat


def _embed(feats: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Enclosing simplex of every point of ``feats (d, N)``.

    Writes the barycentric weights into ``weights (N, d+1)``; returns, of the first ``d``
    coordinates, the remainder-0 point ``rem0 (d, N)`` (integer-valued floats) and the rank
    ``(d, N)``, following section 3 of
    Adams et al.: elevate onto the hyperplane ``H_d`` with the matrix ``E`` (scaled so the blur has
    unit standard deviation), round to the nearest remainder-0 point, sort the residual to find
    the simplex. Rows of ``N`` values throughout: tensor ops over a tiny last dimension are slow.
    """
    d = feats.shape[0]
    dp1 = d + 1
    elevated = torch.mm(_elevation(d, feats.device), feats)
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
    # Barycentric weights: b[d - rank_i] += frac_i and b[d + 1 - rank_i] -= frac_i. The ranks of a
    # point are a permutation, so one scatter (no accumulation) of the fracs into the order
    # ``g[k] = frac of the coordinate with d - rank = k`` gives b[k] = g[k] - g[k-1] and
    # b[0] = g[0] + (1 - g[d]): the same sums as two scatter-adds, in half the time.
    # As one matrix product ``[g; 1]^T [D; e_0]`` it lands directly in the (N, d+1) rows of ``weights``.
    g = frac.new_empty(dp1 + 1, frac.shape[1])
    g[dp1] = 1.0
    g[:dp1].scatter_(0, (d - rank).long(), frac)  # (float subtraction, then one conversion: cheaper)
    torch.mm(g.T, _barycentric(d, feats.device), out=weights)
    return rem0[:d], rank[:d]


@cache
def _barycentric(d: int, device: torch.device) -> Tensor:
    """``(d+2, d+1)``: ``D`` with ``(g^T D)[k] = g[k] - g[k-1]`` (``g[-1]`` read as ``g[d]``) over
    the row ``e_0``: barycentric weights from the sorted fracs and a row of ones (see :func:`_embed`)."""
    diff = torch.eye(d + 1) - torch.roll(torch.eye(d + 1), 1, dims=1)
    return torch.cat([diff, torch.eye(1, d + 1)]).to(device)


@cache
def _elevation(d: int, device: torch.device) -> Tensor:
    """The ``(d+1, d)`` matrix ``E`` of Adams et al. (scaled so that the blur has unit standard
    deviation) that maps a feature vector onto the hyperplane ``H_d``: row ``j`` has
    ``c_i`` for ``i >= j`` and ``-j c_{j-1}`` at ``j - 1``, ``c_i = sqrt(2/3) (d+1) / sqrt((i+1)(i+2))``."""
    inv_std = math.sqrt(2.0 / 3.0) * (d + 1)
    scale = [inv_std / math.sqrt((i + 1) * (i + 2)) for i in range(d)]
    e = torch.zeros(d + 1, d, dtype=torch.float32)
    for j in range(d + 1):
        for i in range(j, d):
            e[j, i] = scale[i]
        if j:
            e[j, j - 1] = -j * scale[j - 1]
    return e.to(device)


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

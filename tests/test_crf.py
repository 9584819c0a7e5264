"""Dense CRF: simplex, exact-kernel reference, pydensecrf cross-check on CamVid, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from semseg.errors import DataError, InvalidOptionError
from semseg.inference import CRFRefined, DenseCRF, dense_crf, dense_crf_naive
from semseg.inference.crf import _features, _lattices, exact_filter
from semseg.inference.lattice import LatticeOperator


def smooth_image(h: int, w: int) -> torch.Tensor:
    """A uint8 HxWx3 image with regions and soft edges (random colours, upsampled)."""
    x = torch.rand(1, 3, h // 4 + 1, w // 4 + 1) * 255
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)


def random_probs(c: int, h: int, w: int, n: int | None = None) -> torch.Tensor:
    shape = (c, h, w) if n is None else (n, c, h, w)
    return torch.softmax(2 * torch.randn(shape), -3)


def test_output_on_simplex_and_changes_labels() -> None:
    img, probs = smooth_image(24, 32), random_probs(5, 24, 32)
    out = dense_crf(img, probs)
    assert out.shape == probs.shape and out.dtype == torch.float32
    assert out.min() >= 0 and torch.allclose(out.sum(0), torch.ones(24, 32), atol=1e-5)
    # The CRF smooths noisy labels: it must change some of them.
    assert (out.argmax(0) != probs.argmax(0)).float().mean() > 0.05


def test_zero_iterations_and_zero_weights_return_input() -> None:
    img, probs = smooth_image(10, 12), random_probs(3, 10, 12)
    clipped = probs.clamp(min=1e-5)
    clipped = clipped / clipped.sum(0)
    assert torch.allclose(dense_crf(img, probs, iterations=0), clipped, atol=1e-6)
    assert torch.allclose(dense_crf(img, probs, bilateral_weight=0, gaussian_weight=0), clipped, atol=1e-6)


def test_batched_equals_one_by_one() -> None:
    imgs = torch.stack([smooth_image(12, 16) for _ in range(3)])
    probs = random_probs(4, 12, 16, n=3)
    batched = dense_crf(imgs, probs)
    for i in range(3):
        assert torch.allclose(batched[i], dense_crf(imgs[i], probs[i]), atol=1e-5)


@pytest.mark.parametrize(("xy", "rgb", "tolerance"), [(121.0, 5.0, 0.06), (3.0, None, 0.03), (6.0, 20.0, 0.2)])
def test_lattice_messages_match_exact_kernel(xy: float, rgb: float | None, tolerance: float) -> None:
    """The normalised lattice filter approximates the exact Gaussian sum: relative L2 error below
    6% (DeepLab's bilateral kernel), 3% (its Gaussian kernel), 20% (a narrow 5-D kernel).
    Measured: about 4.5%, 1.6% and 14%."""
    img, probs = smooth_image(16, 20), random_probs(4, 16, 20)
    lattices, norms = _lattices(img[None], xy, rgb or 5.0, xy)
    k = 0 if rgb else 1
    q = probs.flatten(1).T.contiguous()
    approx = LatticeOperator([lattices[k]], [norms[k]], [1.0])(q)
    exact = exact_filter(_features(img[None], xy, rgb).double())(q.double()[None])[0]
    assert float((approx.double() - exact).norm() / exact.norm()) < tolerance


def test_matches_naive_reference_on_tiny_images() -> None:
    """10 mean-field iterations amplify the lattice's approximation only a little with DeepLab's
    parameters: mean |dp| < 0.02 and >= 95% equal labels (measured 0.005-0.013 and 97-99.7%)."""
    img, probs = smooth_image(16, 20), random_probs(4, 16, 20)
    fast, naive = dense_crf(img, probs), dense_crf_naive(img, probs)
    assert float((fast - naive).abs().mean()) < 0.02
    assert float((fast.argmax(0) == naive.argmax(0)).float().mean()) >= 0.95
    one_fast, one_naive = dense_crf(img, probs, iterations=1), dense_crf_naive(img, probs, iterations=1)
    assert float((one_fast - one_naive).abs().mean()) < 0.01


def test_agrees_with_pydensecrf_on_camvid(camvid_root) -> None:
    dcrf = pytest.importorskip("pydensecrf.densecrf")
    name = "0016E5_07959.png"
    img = np.array(Image.open(camvid_root / "val" / name).convert("RGB"))  # writable: pydensecrf needs it
    label = np.asarray(Image.open(camvid_root / "valannot" / name)).astype(np.int64)
    h, w = label.shape
    # No trained model in tests: noisy one-hot of the ground truth (void 11 -> no class) as the network.
    rng = np.random.default_rng(0)
    logits = 3.0 * np.eye(12)[label][..., :11].transpose(2, 0, 1) + rng.normal(0, 1.5, (11, h, w))
    probs = torch.softmax(torch.from_numpy(logits), 0).float()
    crf = dcrf.DenseCRF2D(w, h, 11)
    crf.setUnaryEnergy(np.ascontiguousarray(-np.log(np.clip(probs.numpy(), 1e-5, 1.0)).reshape(11, -1)))
    crf.addPairwiseGaussian(sxy=3, compat=3)
    crf.addPairwiseBilateral(sxy=121, srgb=5, rgbim=img, compat=4)
    ref = torch.from_numpy(np.array(crf.inference(10)).reshape(11, h, w))
    ours = dense_crf(img, probs)
    agreement = float((ours.argmax(0) == ref.argmax(0)).float().mean())
    assert agreement >= 0.98, f"label agreement with pydensecrf {agreement:.4f}"
    assert float((ours - ref).abs().mean()) < 1e-3
    assert float((ref.argmax(0) != probs.argmax(0)).float().mean()) > 0.1  # the CRF did real work


def test_layer_with_potts_init_equals_dense_crf() -> None:
    img, probs = smooth_image(12, 16), random_probs(3, 12, 16).clamp(min=1e-4)
    probs = probs / probs.sum(0)
    layer = DenseCRF(3, iterations=10)
    out = layer(probs.log()[None], img.permute(2, 0, 1)[None]).softmax(1)[0]
    assert torch.allclose(out, dense_crf(img, probs), atol=1e-4)


def test_layer_gradcheck() -> None:
    torch.manual_seed(1)
    layer = DenseCRF(3, iterations=2, bilateral_xy=4.0, bilateral_rgb=30.0, gaussian_xy=2.0)
    image = smooth_image(5, 6).permute(2, 0, 1)[None]
    logits = torch.randn(1, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    params = {name: p.detach().double().requires_grad_() for name, p in layer.named_parameters()}
    params["compatibility"] = (params["compatibility"] + 0.1 * torch.rand(3, 3, dtype=torch.float64)).detach()
    params["compatibility"].requires_grad_()
    names = list(params)

    def fn(x: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(layer, dict(zip(names, values, strict=True)), (x, image))

    assert torch.autograd.gradcheck(fn, (logits, *params.values()), eps=1e-6, atol=1e-5)


def test_layer_trains() -> None:
    layer = DenseCRF(2, iterations=3)
    image = smooth_image(8, 8).permute(2, 0, 1)[None]
    logits = torch.randn(1, 2, 8, 8, requires_grad=True)
    loss = F.cross_entropy(layer(logits, image), torch.randint(0, 2, (1, 8, 8)))
    loss.backward()
    for p in (logits, *layer.parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_bad_input() -> None:
    img, probs = smooth_image(8, 10), random_probs(3, 8, 10)
    with pytest.raises(DataError, match="differ in size"):
        dense_crf(img, probs[:, :, :9])
    with pytest.raises(DataError, match="distribution"):
        dense_crf(img, probs * 2)
    with pytest.raises(DataError, match="distribution"):
        dense_crf(img, torch.randn(3, 8, 10))
    with pytest.raises(DataError, match="uint8"):
        dense_crf(img.float(), probs)
    with pytest.raises(DataError, match="probs"):
        dense_crf(img, probs[None])
    with pytest.raises(InvalidOptionError, match="iterations"):
        dense_crf(img, probs, iterations=-1)
    with pytest.raises(InvalidOptionError, match="bilateral_xy"):
        dense_crf(img, probs, bilateral_xy=0)
    with pytest.raises(InvalidOptionError, match="too large"):
        dense_crf(img, probs, bilateral_rgb=1e-6)
    with pytest.raises(DataError, match="image must be"):
        DenseCRF(3)(probs[None], img[None])


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    img, probs = smooth_image(48, 64), random_probs(5, 48, 64)
    cpu, gpu = dense_crf(img, probs), dense_crf(img.cuda(), probs.cuda())
    assert gpu.is_cuda
    assert float((gpu.cpu() - cpu).abs().mean()) < 1e-4


def test_crf_refined_model_trains_end_to_end() -> None:
    from semseg.models.segmentor import SegmentationOutput

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.mean, self.std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)

        def forward(self, x: torch.Tensor, return_aux: bool = False):
            logits = self.conv(x)
            return SegmentationOutput(logits, {"aux": logits}) if return_aux else logits

    model = CRFRefined(Net(), DenseCRF(3, iterations=2))
    x = torch.randn(2, 3, 10, 12)
    out = model(x, return_aux=True)
    assert out.logits.shape == (2, 3, 10, 12) and "aux" in out.aux
    assert torch.allclose(model(x), out.logits)
    F.cross_entropy(out.logits, torch.randint(0, 3, (2, 10, 12))).backward()
    assert model.model.conv.weight.grad is not None and model.crf.compatibility.grad is not None


def test_packed_numpy_sort_equals_stable_torch_sort() -> None:
    from semseg.inference.lattice import _stable_sort

    keys = torch.randint(0, 50, (5000,)) * (2**30)  # many ties, large values
    for k in (keys, torch.tensor([7]), torch.randint(-5, 5, (100,)), torch.randint(0, 2**61, (100,))):
        values, order = _stable_sort(k)
        ref_values, ref_order = torch.sort(k, stable=True)
        assert torch.equal(values, ref_values) and torch.equal(order, ref_order)


def test_fast_lattice_equals_plain_sort_and_uncached(monkeypatch) -> None:
    """The packed NumPy sort, the cached Gaussian lattice and the one-thread block change no bit
    of the output (the implementation before them used torch.sort and rebuilt every lattice)."""
    from semseg.inference import crf, lattice

    imgs = torch.stack([smooth_image(20, 26) for _ in range(2)])
    probs = random_probs(5, 20, 26, n=2)
    fast = dense_crf(imgs, probs)
    assert torch.equal(dense_crf(imgs, probs), fast)  # second call: cached Gaussian lattice
    monkeypatch.setattr(lattice, "_stable_sort", lambda keys: torch.sort(keys, stable=True))
    crf._gaussian_lattice.cache_clear()
    assert torch.equal(dense_crf(imgs, probs), fast)
    crf._gaussian_lattice.cache_clear()


def test_dense_crf_runs_in_one_thread_and_restores_the_count(monkeypatch) -> None:
    from semseg.inference import crf, lattice

    seen: list[int] = []
    build = lattice.PermutohedralLattice.__init__

    def spy(self, features):
        seen.append(torch.get_num_threads())
        build(self, features)

    monkeypatch.setattr(lattice.PermutohedralLattice, "__init__", spy)
    crf._gaussian_lattice.cache_clear()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        dense_crf(smooth_image(8, 10), random_probs(3, 8, 10))
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
        crf._gaussian_lattice.cache_clear()


def test_wide_simplex_keys_take_two_sorts_with_the_same_result(monkeypatch) -> None:
    """Where the packed simplex key would overflow, the points are grouped by two stable sorts
    (rank code, then the rest): the same lattice, so the same output bit for bit."""
    from semseg.inference import crf, lattice

    img, probs = smooth_image(18, 22), random_probs(4, 18, 22)
    crf._gaussian_lattice.cache_clear()
    one_sort = dense_crf(img, probs)
    monkeypatch.setattr(lattice, "_KEY_LIMIT", 0)
    crf._gaussian_lattice.cache_clear()
    try:
        assert torch.equal(dense_crf(img, probs), one_sort)
    finally:
        crf._gaussian_lattice.cache_clear()


@pytest.mark.parametrize("bound", [50, 2**16 + 3, 2**20])
def test_radix_argsort_equals_stable_torch_sort(bound: int) -> None:
    from semseg.inference.lattice import _argsort_small

    keys = torch.randint(0, bound, (20000,))
    keys[:50] = bound - 1  # the widest key and many ties
    assert torch.equal(_argsort_small(keys, bound), torch.sort(keys, stable=True)[1])


def test_operator_out_and_reused_buffers_change_nothing() -> None:
    """The operator writes into ``out`` (even the input itself) and reuses its lattice buffers
    between calls, also across channel counts: the same values as fresh calls."""
    img = smooth_image(14, 18)
    lattices, norms = _lattices(img[None], 121.0, 5.0, 3.0)
    q5, q2 = torch.rand(14 * 18, 5), torch.rand(14 * 18, 2)
    first = LatticeOperator(lattices, norms, [4.0, 3.0])(q5)
    op = LatticeOperator(lattices, norms, [4.0, 3.0])
    assert torch.equal(op(q2), LatticeOperator(lattices, norms, [4.0, 3.0])(q2))
    assert torch.equal(op(q5), first)
    inplace = q5.clone()
    assert op(inplace, out=inplace).data_ptr() == inplace.data_ptr()
    assert torch.equal(inplace, first)
    assert torch.equal(op(q5.double()), LatticeOperator(lattices, norms, [4.0, 3.0])(q5.double()))

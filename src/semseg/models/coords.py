"""Coordinate maps: where a feature pixel sits in the input image, and the bilinear kernel.

A pixel ``f`` of a feature map is centred on input-image coordinate ``scale * f + offset``. Every
convolution, pooling and transposed convolution changes ``(scale, offset)`` by a rule that depends
only on its kernel, stride, padding and dilation, never on the input size. This is how Caffe's
``Crop`` layer found the offsets that align FCN's skip connections (Long et al.,
https://arxiv.org/abs/1411.4038, Sec. 4.2): two maps of the same scale are aligned by cropping the
one whose pixel 0 lies further left by ``(offset_a - offset_b) / scale`` pixels.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

CoordMap = tuple[float, float]  # (scale, offset): image coordinate = scale * index + offset
IDENTITY: CoordMap = (1.0, 0.0)


def _pair_first(v: int | tuple[int, ...]) -> int:
    # Our layers are square; the vertical value stands for both.
    return v[0] if isinstance(v, tuple) else int(v)


def through(cmap: CoordMap, module: nn.Module) -> CoordMap:
    """The coordinate map after ``module`` given the one before it (layers that keep the pixel
    grid, such as ReLU, dropout or batch norm, leave it unchanged)."""
    scale, offset = cmap
    if isinstance(module, nn.ConvTranspose2d):
        k, s = _pair_first(module.kernel_size), _pair_first(module.stride)
        p, d = _pair_first(module.padding), _pair_first(module.dilation)
        # Output pixel u lies over input position (u + p - d * (k - 1) / 2) / s.
        return scale / s, offset + scale * (p - d * (k - 1) / 2) / s
    if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
        k, s = _pair_first(module.kernel_size), _pair_first(module.stride)
        p = _pair_first(module.padding)
        d = _pair_first(getattr(module, "dilation", 1))
        # Output pixel g covers input positions s * g - p ... s * g - p + d * (k - 1).
        return scale * s, offset + scale * (d * (k - 1) / 2 - p)
    return cmap


def through_all(cmap: CoordMap, modules: Iterable[nn.Module]) -> CoordMap:
    """Compose :func:`through` over ``modules`` in order."""
    for m in modules:
        cmap = through(cmap, m)
    return cmap


def crop_offset(larger: CoordMap, reference: CoordMap) -> int:
    """Pixels to drop from the start of the map ``larger`` so that it lines up with ``reference``.

    Raises ``RuntimeError`` if the maps have different scales or do not share a pixel grid,
    which would be a wiring bug, not a user error.
    """
    if larger[0] != reference[0]:
        raise RuntimeError(f"cannot align maps of scale {larger[0]} and {reference[0]}")
    shift = (reference[1] - larger[1]) / larger[0]
    if shift != int(shift) or shift < 0:
        raise RuntimeError(f"maps {larger} and {reference} are not aligned by a whole non-negative shift")
    return int(shift)


def bilinear_kernel(kernel_size: int) -> torch.Tensor:
    """The ``(k, k)`` kernel with which a stride-``ceil(k/2)`` transposed convolution performs
    bilinear interpolation (FCN's ``upsample_filt``)."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float64)
    filt = 1 - (og - center).abs() / factor
    return (filt[:, None] * filt[None, :]).float()


def init_bilinear_(deconv: nn.ConvTranspose2d) -> None:
    """Initialise a ``C -> C`` transposed convolution to per-channel bilinear upsampling: each
    output channel copies its own input channel (the weight is diagonal in channels)."""
    cin, cout = deconv.in_channels, deconv.out_channels
    if cin != cout * deconv.groups and cin != cout:
        raise RuntimeError("bilinear init needs as many output as input channels")
    k = _pair_first(deconv.kernel_size)
    with torch.no_grad():
        deconv.weight.zero_()
        kernel = bilinear_kernel(k).to(deconv.weight.device, deconv.weight.dtype)
        if deconv.groups == 1:
            idx = torch.arange(cin, device=deconv.weight.device)
            deconv.weight[idx, idx] = kernel
        else:
            deconv.weight[:] = kernel
        if deconv.bias is not None:
            deconv.bias.zero_()

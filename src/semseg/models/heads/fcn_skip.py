"""FCN-32s/16s/8s decoding (Long et al., https://arxiv.org/abs/1411.4038, Sec. 4.2, Fig. 3).

``score_fr`` scores the last feature (``fc7``) at stride 32. FCN-16s adds ``score_pool4`` on
``pool4`` to the 2x upsampled scores; FCN-8s then adds ``score_pool3`` on ``pool3`` to those,
again upsampled 2x. As in the released nets (shelhamer/fcn.berkeleyvision.org ``voc-fcn*/net.py``):

* every upsampling is bilinear and *fixed*: the 2x ``Deconvolution`` layers have ``lr_mult: 0``
  there, so here their weights are buffers, not parameters (``learn_upsampling=True`` makes the
  2x ones learned, bilinear-initialised parameters instead, as the paper's text describes); the
  final one is a non-persistent buffer, as in the published parameter counts;
* the score layers start at zero (Caffe's default filler);
* ``at_once=True`` is the ``voc-fcn8s-atonce`` net: ``pool4`` and ``pool3`` are scaled by the
  fixed factors 0.01 and 0.0001 before their score layers, so that all skips can be learned at
  once from the start.

Alignment: each sum crops the larger map by the offset that puts pixels over the same image
position (Caffe's ``Crop`` layer), computed from the layers' geometry in
:mod:`semseg.models.coords`. With FCN's pad-100 the offsets are the published 5 (pool4), 9
(pool3) and 19 / 27 / 31 (final, for 32s / 16s / 8s); with "same" padding they are all 0 and the
transposed convolutions are asked for exactly the skip's (or input's) size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from semseg.errors import InvalidOptionError, allowed
from semseg.models.coords import CoordMap, bilinear_kernel, crop_offset, init_bilinear_, through
from semseg.models.heads import check_input_feature, index_of_stride

SKIPS = {"32s": (), "16s": (16,), "8s": (16, 8)}
# voc-fcn8s-atonce: the fixed factor each skip's pooled feature is multiplied by, by its stride.
AT_ONCE_SCALES = {16: 0.01, 8: 0.0001}


def _up_geometry(factor: int, paper: bool) -> tuple[int, int]:
    """Kernel and padding of a ``factor``-x bilinear transposed convolution: FCN's kernel
    ``2 * factor`` without padding, or padding ``factor / 2`` for "same" maps."""
    return 2 * factor, 0 if paper else factor // 2


class FCNSkipHead(nn.Module):
    """Shape: backbone features, the first of them the ``(N, 3, H, W)`` input -> logits
    ``(N, num_classes, H, W)``, upsampled and cropped to the input's size.

    Args:
        in_channels, in_strides: from the backbone, built with ``with_input=True``: the first
            feature is the input image (stride 1), whose size the output is cropped to; the last
            is ``fc7`` at stride 32 and the skips are read from the first features at strides 16
            (``pool4``) and 8 (``pool3``).
        num_classes: output channels.
        in_coords: the backbone's coordinate map per feature (``backbone.coords``).
        variant: ``"32s"``, ``"16s"`` or ``"8s"``.
        final_kernel: kernel of the final fixed upsampling (FCN-AlexNet used 63 instead of 64).
        learn_upsampling: the 2x upsamplings are learned parameters (bilinear-initialised)
            rather than fixed bilinear buffers. The state-dict keys are the same either way.
        at_once: scale ``pool4`` by 0.01 and ``pool3`` by 0.0001 before scoring them.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        num_classes: int,
        in_coords: Sequence[CoordMap],
        variant: str = "8s",
        final_kernel: int | None = None,
        learn_upsampling: bool = False,
        at_once: bool = False,
    ) -> None:
        super().__init__()
        if variant not in SKIPS:
            raise InvalidOptionError(f"FCN variant={variant!r}; allowed: {allowed(SKIPS)}")
        if in_strides[-1] != 32:
            raise InvalidOptionError(f"FCN needs its last feature at stride 32, got {in_strides[-1]}")
        check_input_feature(in_strides, f"FCN-{variant}")
        self.variant = variant
        self.num_classes = num_classes
        # "paper" when the top feature does not sit at the "same" position (stride - 1) / 2.
        top = in_coords[-1]
        self.paper = top[1] != (top[0] - 1) / 2
        self.score_fr = nn.Conv2d(in_channels[-1], num_classes, 1)
        self.learn_upsampling, self.at_once = learn_upsampling, at_once
        cmap = top
        self.skip_index: list[int] = []
        self.skip_offset: list[int] = []
        self.skip_scale: list[float] = []
        self.score_skips = nn.ModuleList()
        self.ups = nn.ModuleList()
        for stride in SKIPS[variant]:
            idx = index_of_stride(in_strides, stride, f"FCN-{variant}")
            k, p = _up_geometry(2, self.paper)
            up = nn.ConvTranspose2d(num_classes, num_classes, k, 2, p, bias=False)
            init_bilinear_(up)
            if not learn_upsampling:
                # Same key ("weight"), but a buffer: no gradient, no optimizer state, no decay.
                weight = up.weight.detach().clone()
                del up.weight
                up.register_buffer("weight", weight)
            cmap = through(cmap, up)
            self.ups.append(up)
            self.score_skips.append(nn.Conv2d(in_channels[idx], num_classes, 1))
            self.skip_index.append(idx)
            self.skip_offset.append(crop_offset(in_coords[idx], cmap))
            self.skip_scale.append(AT_ONCE_SCALES[stride] if at_once else 1.0)
        for score in (self.score_fr, *self.score_skips):
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
        factor = int(cmap[0])
        k, p = _up_geometry(factor, self.paper)
        k = final_kernel or k
        self.final_stride, self.final_padding = factor, p
        # Fixed bilinear upsampling, one kernel per class (grouped): not a learned parameter.
        self.register_buffer("final_weight", bilinear_kernel(k).expand(num_classes, 1, k, k).clone(), persistent=False)
        final = nn.ConvTranspose2d(num_classes, num_classes, k, factor, p, groups=num_classes, bias=False)
        self.final_offset = crop_offset(through(cmap, final), (1.0, 0.0))
        self.stride = 1

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        out_size = features[0].shape[-2:]  # the input image's
        x = self.score_fr(features[-1])
        skips = zip(self.ups, self.score_skips, self.skip_index, self.skip_offset, self.skip_scale, strict=True)
        for up, score, idx, off, scale in skips:
            skip = score(features[idx] * scale if scale != 1.0 else features[idx])
            x = up(x, output_size=self._size(x, skip.shape[-2:], 2, up.padding[0], up.kernel_size[0]))
            x = x + _crop(skip, off, x.shape[-2:])
        k, s, p = self.final_weight.shape[-1], self.final_stride, self.final_padding
        size = self._size(x, out_size, s, p, k)
        natural = [(n - 1) * s - 2 * p + k for n in x.shape[-2:]]
        extra = tuple(t - n for t, n in zip(size, natural, strict=True))
        weight = self.final_weight.to(x.dtype)
        x = F.conv_transpose2d(x, weight, stride=s, padding=p, output_padding=extra, groups=self.num_classes)
        return _crop(x, self.final_offset, out_size)

    def _size(self, x: Tensor, want: Sequence[int], stride: int, padding: int, k: int) -> list[int]:
        """Output size of a transposed conv: its natural size for the paper's form (the larger map
        is cropped), or exactly ``want`` for "same" maps, where odd sizes leave the natural size
        up to ``stride - 1`` short (``output_padding`` adds those rows at the end)."""
        natural = [(n - 1) * stride - 2 * padding + k for n in x.shape[-2:]]
        if self.paper:
            return natural
        return [w if 0 <= w - n < stride else n for n, w in zip(natural, want, strict=True)]


def _crop(t: Tensor, offset: int, size: Sequence[int]) -> Tensor:
    h, w = size
    if t.shape[-2] < offset + h or t.shape[-1] < offset + w:
        raise InvalidOptionError(
            f"input too small for this FCN: a {tuple(t.shape[-2:])} map cannot give {h}x{w} at offset {offset}"
        )
    return t[..., offset : offset + h, offset : offset + w]

"""VGG-16 (Simonyan and Zisserman, https://arxiv.org/abs/1409.1556) as a segmentation backbone, in
the three forms the classic papers use:

* ``variant="plain"``: the 13 convolutions and 5 max-pools;
* ``variant="fcn"``: FCN (https://arxiv.org/abs/1411.4038) turns the classifier into convolutions:
  ``fc6`` is a 7x7 convolution with 4096 channels and ``fc7`` a 1x1 one, so the net runs on any
  size. ``padding="paper"`` pads ``conv1_1`` by 100 pixels and rounds pools up (Caffe), as FCN did
  so that the 7x7 ``fc6`` never runs out of input; ``padding="same"`` keeps each map at
  ``input / stride`` instead (``fc6`` padded by 3);
* ``variant="deeplab"``: DeepLab-LargeFOV (https://arxiv.org/abs/1412.7062): 3x3 pools with
  padding 1, ``pool4`` and ``pool5`` with stride 1 (output stride 8), ``conv5_*`` dilated by 2,
  ``fc6`` a 3x3 convolution with dilation 12 and 1024 channels, ``fc7`` 1x1 with 1024, and
  (``pool5a=True``, as the released LargeFOV ``train.prototxt``) a 3x3 stride-1 average pool
  ``pool5a`` between ``pool5`` and ``fc6``.

``fc6`` and ``fc7`` are followed by element-wise dropout 0.5 (Caffe's ``Dropout``).

Keys of the convolutions are torchvision's (``features.0`` ... ``features.28``), so its ImageNet
``vgg16`` file fits; :meth:`VGG16.convert_classifier` reshapes its ``classifier.0/3`` into ``fc6``
and ``fc7`` for the FCN variant (DeepLab subsampled fc6 instead, which is not reproduced here).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from semseg.errors import InvalidOptionError, allowed
from semseg.models.coords import IDENTITY, CoordMap, through_all

# Output channels of each conv; "M" is a max-pool. torchvision's ``features`` indices follow from it.
CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VARIANTS = ("plain", "fcn", "deeplab")
PADDINGS = ("same", "paper")


class VGG16(nn.Module):
    """VGG-16 backbone.

    Args:
        variant: ``"plain"``, ``"fcn"`` or ``"deeplab"`` (see the module docstring).
        padding: ``"same"`` or ``"paper"`` (FCN's pad-100 and Caffe's rounding up); only
            ``"same"`` for the other variants.
        output_stride, multi_grid: accepted for :func:`build_backbone`; must be 32 (8 for
            ``"deeplab"``) and ``None``.
        with_input: return the input image itself first (3 channels, stride 1), for heads that
            read it (DeepLab-MSc's branch on the image) or its size (FCN's final crop).
        pool5a: ``"deeplab"`` only: the 3x3 stride-1 average pool before ``fc6`` (Caffe's
            padded average, which counts the padding: PyTorch's ``count_include_pad=True``).

    Shape:
        ``(N, 3, H, W)`` -> (the input, with ``with_input``, then) the outputs of ``pool1`` ...
        ``pool5`` (then ``fc7`` for ``"fcn"`` and ``"deeplab"``) with ``self.out_channels``
        channels at nominal strides ``self.strides``. ``self.coords`` holds each feature's
        coordinate map (see :mod:`semseg.models.coords`).
    """

    def __init__(
        self,
        variant: str = "plain",
        padding: str = "same",
        output_stride: int | None = None,
        multi_grid: object = None,
        with_input: bool = False,
        pool5a: bool = False,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise InvalidOptionError(f"VGG16 variant={variant!r}; allowed: {allowed(VARIANTS)}")
        if padding not in PADDINGS or (padding == "paper" and variant != "fcn"):
            ok = PADDINGS if variant == "fcn" else ("same",)
            raise InvalidOptionError(f"VGG16 padding={padding!r} for variant {variant!r}; allowed: {allowed(ok)}")
        native = 8 if variant == "deeplab" else 32
        if output_stride not in (None, native):
            raise InvalidOptionError(f"VGG16 {variant} has output_stride {native} only, got {output_stride!r}")
        if multi_grid is not None:
            raise InvalidOptionError("multi_grid applies to ResNet backbones only; vgg16 takes none")
        self.variant, self.padding = variant, padding
        deeplab = variant == "deeplab"
        layers: list[nn.Module] = []
        in_ch, n_pool, pool_index = 3, 0, []
        for i, v in enumerate(CFG):
            if v == "M":
                n_pool += 1
                if deeplab:  # DeepLab: 3x3 windows, padding 1; pool4/pool5 keep the resolution.
                    layers.append(nn.MaxPool2d(3, 1 if n_pool >= 4 else 2, 1, ceil_mode=True))
                else:
                    layers.append(nn.MaxPool2d(2, 2, ceil_mode=padding == "paper"))
                pool_index.append(len(layers) - 1)
                continue
            pad = 100 if (i == 0 and padding == "paper") else 1
            dilation = 2 if (deeplab and n_pool == 4) else 1  # conv5_* compensates the removed stride
            layers += [nn.Conv2d(in_ch, int(v), 3, padding=pad * dilation, dilation=dilation), nn.ReLU(inplace=True)]
            in_ch = int(v)
        self.features = nn.Sequential(*layers)
        self._pool_index = tuple(pool_index)
        channels, strides = [64, 128, 256, 512, 512], [2, 4, 8, 16, 32] if not deeplab else [2, 4, 8, 8, 8]
        if variant == "fcn":
            self.fc6 = nn.Conv2d(512, 4096, 7, padding=3 if padding == "same" else 0)
            self.fc7 = nn.Conv2d(4096, 4096, 1)
        elif deeplab:
            if pool5a:
                self.pool5a = nn.AvgPool2d(3, 1, 1)
            self.fc6 = nn.Conv2d(512, 1024, 3, padding=12, dilation=12)
            self.fc7 = nn.Conv2d(1024, 1024, 1)
        if pool5a and not deeplab:
            raise InvalidOptionError(f"pool5a is a layer of the deeplab variant only, not of {variant!r}")
        self.has_pool5a = pool5a
        if variant != "plain":
            # Caffe's Dropout drops single values, not whole channels.
            self.drop6, self.drop7 = nn.Dropout(0.5), nn.Dropout(0.5)
            channels.append(self.fc7.out_channels)
            strides.append(strides[-1])
        self.with_input = with_input
        if with_input:
            channels, strides = [3, *channels], [1, *strides]
        self.out_channels, self.strides = tuple(channels), tuple(strides)
        self.coords = self._coord_maps()

    def _coord_maps(self) -> tuple[CoordMap, ...]:
        maps, cmap, start = [IDENTITY] if self.with_input else [], IDENTITY, 0
        for end in self._pool_index:
            cmap = through_all(cmap, self.features[start : end + 1])
            maps.append(cmap)
            start = end + 1
        if self.variant != "plain":
            top = [self.pool5a] if self.has_pool5a else []
            maps.append(through_all(cmap, [*top, self.fc6, self.fc7]))
        return tuple(maps)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = [x] if self.with_input else []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._pool_index:
                feats.append(x)
        if self.variant != "plain":
            if self.has_pool5a:
                x = self.pool5a(x)
            x = self.drop6(torch.relu(self.fc6(x)))
            feats.append(self.drop7(torch.relu(self.fc7(x))))
        return feats

    @staticmethod
    def convert_classifier(state: dict[str, Tensor], variant: str = "fcn") -> dict[str, Tensor]:
        """torchvision's ``classifier.0`` (25088 -> 4096) and ``classifier.3`` (4096 -> 4096) as the
        7x7 ``fc6`` and 1x1 ``fc7`` convolutions of FCN (the paper's "convolutionalization")."""
        if variant != "fcn":
            raise InvalidOptionError("only the fcn variant's fc6/fc7 have the shape of VGG's classifier")
        out = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        out["fc6.weight"] = state["classifier.0.weight"].reshape(4096, 512, 7, 7)
        out["fc6.bias"] = state["classifier.0.bias"]
        out["fc7.weight"] = state["classifier.3.weight"].reshape(4096, 4096, 1, 1)
        out["fc7.bias"] = state["classifier.3.bias"]
        return out


def vgg16_backbone(output_stride: int = 32, multi_grid: object = None, **extra: object) -> VGG16:
    """Factory for ``BACKBONES["vgg16"]`` (the plain variant unless ``variant`` is given)."""
    return VGG16(output_stride=output_stride, multi_grid=multi_grid, **extra)  # type: ignore[arg-type]


__all__ = ["VGG16", "vgg16_backbone"]

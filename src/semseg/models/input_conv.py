"""Multi-band inputs: the first convolution of a 3-channel (RGB) network rebuilt for N channels.

:func:`adapt_input_conv` is the rule for its (possibly pretrained) weights; :func:`set_input_channels`
finds the one convolution that reads the image and swaps it. :func:`~semseg.models.create_model`
calls it for ``in_channels != 3`` on every model whose builder has no ``in_channels`` option.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from semseg.errors import InvalidOptionError


def adapt_input_conv(weight: Tensor, in_channels: int) -> Tensor:
    """RGB filters ``(O, 3, kh, kw)`` turned into ``(O, in_channels, kh, kw)`` filters.

    The rule (timm's ``adapt_input_conv``): every new channel's filter is the mean of the three RGB
    filters, scaled by ``3 / in_channels`` -- i.e. ``sum(RGB filters) / in_channels``. For
    ``in_channels=1`` that is the sum of the RGB filters. An image whose N bands all hold the same
    grey value therefore gives exactly the response the RGB network gives to that grey image
    repeated in R, G and B, so pretrained features stay meaningful. ``in_channels=3`` returns
    ``weight`` unchanged.
    """
    if weight.dim() != 4 or weight.shape[1] != 3:
        raise InvalidOptionError(f"adapt_input_conv expects RGB filters (O, 3, kh, kw), got {tuple(weight.shape)}")
    if in_channels == 3:
        return weight
    summed = weight.sum(dim=1, keepdim=True) / in_channels
    return summed.repeat(1, in_channels, 1, 1).contiguous()


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The qualified name and module of the first ``Conv2d`` of ``model`` (module order), the one
    that reads the image in every registered network."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise InvalidOptionError(f"{type(model).__name__} has no Conv2d to adapt to other input channels")


def set_input_channels(model: nn.Module, in_channels: int) -> nn.Module:
    """Replace ``model``'s first convolution (which must read 3 channels) by one reading
    ``in_channels``, its weights adapted by :func:`adapt_input_conv` (bias, stride, padding,
    dilation and groups kept). When ``model`` has ``mean``/``std`` attributes of 3 values (a
    :class:`~semseg.models.SegmentationModel`), they become ``in_channels`` values: the average
    of the RGB ones, repeated. Returns ``model`` (changed in place).

    Shape: the model then takes ``(N, in_channels, H, W)``.
    """
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise InvalidOptionError(f"in_channels must be a positive integer, got {in_channels!r}")
    if in_channels == 3:
        return model
    name, conv = first_conv(model)
    if conv.in_channels != 3 or conv.groups != 1:
        raise InvalidOptionError(
            f"the first convolution of {type(model).__name__} ({name}) reads {conv.in_channels} channels, not 3"
        )
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        conv.stride,  # type: ignore[arg-type]
        conv.padding,  # type: ignore[arg-type]
        conv.dilation,  # type: ignore[arg-type]
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(adapt_input_conv(conv.weight.detach(), in_channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias.detach())  # type: ignore[union-attr]
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
    mean, std = getattr(model, "mean", None), getattr(model, "std", None)
    if isinstance(mean, tuple) and isinstance(std, tuple) and len(mean) == 3 and len(std) == 3:
        model.mean = (sum(mean) / 3,) * in_channels
        model.std = (sum(std) / 3,) * in_channels
    return model

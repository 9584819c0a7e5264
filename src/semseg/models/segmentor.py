"""The composed segmentation model: ``(backbone, head, aux_heads)`` and the metadata it carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from torch import Tensor, nn

from semseg.constants import IMAGENET_MEAN, IMAGENET_STD
from semseg.errors import InvalidOptionError
from semseg.models.heads import HeadOutput
from semseg.models.layers import resize


class SegmentationOutput(NamedTuple):
    """What ``forward(x, return_aux=True)`` returns.

    Attributes:
        logits: ``(N, C, H, W)`` at the input size.
        aux: extra outputs by name, e.g. ``{"aux": (N, C, H, W) logits, "se": (N, C) logits}``.
    """

    logits: Tensor
    aux: dict[str, Tensor]


class SegmentationModel(nn.Module):
    """Backbone features -> head logits at the head's stride -> bilinear resize to the input.

    Every registered network is one of these; what differs between them is the backbone, the
    head and the aux heads, never ``forward`` (U-Net's overlap-tile mode aside, see
    :class:`~semseg.models.zoo.unet.UNet`).

    Args:
        backbone: module whose ``forward(x)`` returns a list of features, high to low resolution,
            and which has ``out_channels`` and ``strides`` tuples.
        head: module mapping that feature list to logits ``(N, C, h, w)``, or to a
            :class:`~semseg.models.heads.HeadOutput` whose ``extras`` join the aux outputs.
        aux_heads: optional named heads on the same feature list (``"aux"``: the FCN head on
            stage 3); their outputs are returned by ``forward(x, return_aux=True)`` only.
        num_classes: output channels of the logits.
        mean, std: input normalisation the model was trained with (0-1 scale, one value per
            input channel); used by :func:`semseg.predict`, not by ``forward`` (which takes
            normalised tensors).
        align_corners: how the logits are resized to the input (``True`` in the PSPNet, EncNet
            and HRNet releases; see :func:`~semseg.models.layers.resize`).

    Attributes:
        class_names, palette: the label semantics (``None`` until :meth:`set_metadata`).
        model_name, model_options: the registered name and options that rebuild this network
            (set by :func:`~semseg.models.create_model`; ``None`` and ``{}`` otherwise).

    Shape:
        x: ``(N, in_channels, H, W)`` normalised float -> logits ``(N, num_classes, H, W)``; with
        ``return_aux=True``, :class:`SegmentationOutput` whose dense aux outputs are
        ``(N, num_classes, H, W)`` and EncNet's ``"se"`` is ``(N, num_classes)``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        aux_heads: Mapping[str, nn.Module] | None = None,
        num_classes: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.backbone = backbone
        self.head = head
        self.aux_heads = nn.ModuleDict(aux_heads or {})
        self.num_classes = num_classes
        self.mean: tuple[float, ...] = tuple(float(v) for v in mean)
        self.std: tuple[float, ...] = tuple(float(v) for v in std)
        self.class_names: list[str] | None = None
        self.palette: list[tuple[int, int, int]] | None = None
        self.model_name: str | None = None
        self.model_options: dict[str, Any] = {}

    def forward(self, x: Tensor, return_aux: bool = False) -> Tensor | SegmentationOutput:
        size = x.shape[-2:]
        features = self.backbone(x)
        out = self.head(features)
        logits, extras = (out.logits, out.extras) if isinstance(out, HeadOutput) else (out, {})
        logits = resize(logits, size, self.align_corners)
        if not return_aux:
            return logits
        aux = {name: aux_head(features) for name, aux_head in self.aux_heads.items()}
        aux.update(extras)
        # Dense outputs are per-pixel predictions and need the input's size; (N, C) ones do not.
        return SegmentationOutput(
            logits, {name: resize(t, size, self.align_corners) if t.dim() == 4 else t for name, t in aux.items()}
        )

    def set_metadata(
        self,
        class_names: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> SegmentationModel:
        """Set the label semantics and input normalisation; an argument left ``None`` keeps its value.

        Args:
            class_names: one name per class (index = train id); two (background, foreground)
                for a binary model (``num_classes=1``).
            palette: one RGB colour (three 0-255 integers) per class, for overlays.
            mean, std: per-channel normalisation on the 0-1 scale (``std`` > 0).

        Returns the model, so a builder can chain it. Raises
        :class:`~semseg.errors.InvalidOptionError` if ``class_names`` or ``palette`` does not have
        ``num_classes`` entries, a colour is not an RGB triple, or ``mean``/``std`` do not fit.
        """
        if class_names is not None:
            names = [str(n) for n in class_names]
            self._check_count("class names", len(names))
            self.class_names = names
        if palette is not None:
            if any(len(c) != 3 or not all(0 <= int(v) <= 255 for v in c) for c in palette):
                raise InvalidOptionError(f"palette colours must be RGB triples of 0-255 integers, got {palette!r}")
            self._check_count("palette colours", len(palette))
            self.palette = [(int(r), int(g), int(b)) for r, g, b in palette]
        new_mean = self.mean if mean is None else tuple(float(v) for v in mean)
        new_std = self.std if std is None else tuple(float(v) for v in std)
        if len(new_mean) != len(new_std) or not new_mean or any(s <= 0 for s in new_std):
            raise InvalidOptionError(
                f"mean and std need one value per input channel and std > 0, got mean {new_mean}, std {new_std}"
            )
        self.mean, self.std = new_mean, new_std
        return self

    def metadata(self) -> dict[str, Any]:
        """The label semantics and normalisation, JSON-ready: ``class_names``, ``palette`` (lists
        of 3 ints, or ``None`` when unset), ``mean`` and ``std`` (lists). ``set_metadata(**m.metadata())``
        restores them."""
        return {
            "class_names": None if self.class_names is None else list(self.class_names),
            "palette": None if self.palette is None else [list(c) for c in self.palette],
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def set_build_info(self, name: str, options: Mapping[str, Any]) -> None:
        """Record the registered ``name`` and builder ``options`` that rebuild this network
        (called by :func:`~semseg.models.create_model`)."""
        self.model_name = name
        self.model_options = dict(options)

    @property
    def is_binary(self) -> bool:
        """Whether this is a binary (foreground/background) model: one sigmoid logit channel."""
        return self.num_classes == 1

    @property
    def num_labels(self) -> int:
        """The label values a prediction takes: 2 (background 0, foreground 1) for a binary model,
        else ``num_classes``; also the number of class names and palette colours."""
        return 2 if self.num_classes == 1 else int(self.num_classes or 0)

    def _check_count(self, what: str, count: int) -> None:
        if self.num_classes is not None and count != self.num_labels:
            binary = " (a binary model: background and foreground)" if self.is_binary else ""
            raise InvalidOptionError(f"the model has {self.num_labels} classes{binary} but {count} {what} were given")

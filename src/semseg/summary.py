"""Look inside a segmentation model: one row per stage with its output shape, stride, dilations,
theoretical receptive field, parameters and FLOPs.

The stages are the backbone's feature levels (what ``backbone(x)`` returns, high to low
resolution), the head and each aux head. Everything comes from one forward pass of a zero image
(batch 1) in ``eval()`` mode without autograd::

    from semseg.models import create_model
    from semseg.summary import format_summary, summarize

    rows = summarize(create_model("fcn_resnet50_d8"), size=(512, 512))
    print(format_summary(rows))

**FLOPs** are measured with :class:`torch.utils.flop_counter.FlopCounterMode` and reported as
FLOPs, i.e. 2 x the multiply-adds of convolutions and matrix products (the counter's convention).
Normalisation, activations, element-wise sums and interpolation are not counted. The aux heads
run only in training; their FLOPs are in their own rows.

**Receptive field** (RF): the side, in input pixels, of the input window that can influence one
output pixel, from the kernel sizes, strides and dilations along the path (padding and the weights
do not matter). See :class:`_Walker` for the rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.weak import WeakIdKeyDictionary

from semseg.errors import InvalidOptionError
from semseg.models.heads import HeadOutput

Pair = tuple[float, float]
GLOBAL: Pair = (math.inf, math.inf)


@dataclass(frozen=True)
class StageRow:
    """One line of the summary.

    Attributes:
        name: ``backbone[i]`` (feature level ``i``), ``head``, ``aux_heads.NAME``; and, only when
            non-zero, ``backbone (unused)`` (backbone modules that feed no returned feature) and
            ``other`` (parameters or FLOPs of the model outside backbone and heads).
        module: class name of the stage's module (the backbone's for feature levels).
        shape: output shape, e.g. ``(1, 256, 128, 128)``.
        stride: ``(sy, sx)`` input pixels between neighbouring output pixels; ``None`` when the
            output has no spatial grid (EncNet's SE vector) or for the two extra rows.
        dilations: the distinct dilations of the convolutions counted in this stage, sorted (the
            vertical value of a non-square dilation stands for both).
        receptive_field: ``(height, width)`` in input pixels; ``math.inf`` when a global pooling,
            an encoding or attention layer lets every input pixel reach the output.
        params: parameters owned by the stage (a feature level: the backbone modules it is the
            first level to depend on). Rows sum to the model's total, shared tensors once.
        flops: FLOPs (2 x multiply-adds) spent in the stage's modules.
    """

    name: str
    module: str
    shape: tuple[int, ...]
    stride: Pair | None
    dilations: tuple[int, ...]
    receptive_field: Pair | None
    params: int
    flops: int


@dataclass(frozen=True)
class _Field:
    """What the walker knows about one tensor: its receptive field and stride (``jump``) in input
    pixels, per axis ``(y, x)``, and the modules (by index) it depends on."""

    rf: Pair
    jump: Pair
    deps: frozenset[int] = field(default_factory=frozenset)


# Module types whose geometry the forward hook applies (from the module's attributes).
_CONVS = (nn.Conv2d, nn.ConvTranspose2d)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
_GEOMETRY_MODULES = (*_CONVS, *_POOLS)
_TAPS = {"nearest": 1, "nearest-exact": 1, "bilinear": 2, "linear": 2, "bicubic": 4}


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, Sequence) else (int(v), int(v))


def _tensors(obj: Any) -> Iterator[Tensor]:
    """Every tensor in a (nested) tuple, list or dict, in order."""
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _window(field_in: _Field, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]) -> Pair:
    """RF after a window of ``kernel`` taps spaced ``dilation`` apart: each tap further adds
    ``dilation`` input-map steps of ``jump`` input pixels."""
    return tuple(r + (k - 1) * d * j for r, k, d, j in zip(field_in.rf, kernel, dilation, field_in.jump, strict=True))  # type: ignore[return-value]


def _conv(field_in: _Field, kernel: Any, stride: Any, dilation: Any, transposed: bool) -> tuple[Pair, Pair]:
    """``(rf, jump)`` after a convolution or pooling window.

    Convolution: ``rf + (k - 1) * d * jump`` and ``jump * s``. Transposed convolution (stride
    ``s`` upsampling): an output pixel gathers ``ceil((d * (k - 1) + 1) / s)`` neighbouring input
    pixels, so ``rf + (that - 1) * jump`` and ``jump / s``.
    """
    k, s, d = _pair(kernel), _pair(stride), _pair(dilation)
    if not transposed:
        return _window(field_in, k, s, d), tuple(j * si for j, si in zip(field_in.jump, s, strict=True))  # type: ignore[return-value]
    taps = tuple(math.ceil((di * (ki - 1) + 1) / si) for ki, si, di in zip(k, s, d, strict=True))
    rf = tuple(r + (t - 1) * j for r, t, j in zip(field_in.rf, taps, field_in.jump, strict=True))
    return rf, tuple(j / si for j, si in zip(field_in.jump, s, strict=True))  # type: ignore[return-value]


def _arg(args: Sequence[Any], kwargs: dict[str, Any], pos: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[pos] if len(args) > pos else default


class _Walker(TorchFunctionMode):
    """Carries a receptive field, a stride and the modules a tensor depends on through one
    forward pass, and charges each operation's FLOPs to the innermost module running it.

    Forward pre-hooks and hooks on every module keep the stack of modules being run (modules in
    forward order); the torch-function mode sees every tensor operation in between, including the
    ones outside modules (residual sums, concatenations, interpolation). The rules:

    * **Convolutions and pools** (``nn.Conv2d``, ``nn.ConvTranspose2d``, ``nn.MaxPool2d``,
      ``nn.AvgPool2d``): the forward hook applies :func:`_conv` with the module's kernel size,
      stride and dilation. A convolution called as a function outside such a module
      (``F.conv2d``, ``F.conv_transpose2d``, as FCN-8s' final upsampling) is read from its arguments.
    * **Branches** (an operation with several inputs: ``a + b``, ``torch.cat``, gating
      ``x * attention``): the receptive field is the **maximum over the branches**, per axis,
      and the stride the smallest (the finest grid: a pooled gate or a map upsampled from an odd
      size does not coarsen it). Each branch's own field went through its own convolutions, so a
      residual block's RF is that of its longest path.
    * **Resampling**: ``F.interpolate`` divides the stride by the size ratio and widens the RF by
      its taps minus one (bilinear: one input-map step); ``F.max_unpool2d`` divides the stride;
      adaptive pooling to ``o`` bins widens the RF by its largest bin (minus one) and scales the
      stride by ``in / o``; to one bin it is **global** (``math.inf``).
    * **Global mixing**: an operation that turns a spatial map ``(N, C, H, W)`` into something
      without that ``H, W`` grid (a mean over space, a flatten for attention or EncNet's
      encoding) makes the field global; what is computed from it stays global. A map made again
      from such a tensor (a view back to ``(N, C, h, w)``) gets the stride ``image size / h``.
    * Everything else (activations, normalisation, crops, padding, layout changes) keeps the
      field of its input.
    """

    def __init__(self, model: nn.Module, counter: FlopCounterMode, image_hw: tuple[int, int]) -> None:
        super().__init__()
        self.counter = counter
        self.image_hw = image_hw
        self.modules: list[nn.Module] = [m for _, m in model.named_modules()]
        self.index = {id(m): i for i, m in enumerate(self.modules)}
        self.flops = [0] * len(self.modules)
        self.dilations: dict[int, set[int]] = {}
        self.fields: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.stack: list[int] = []
        self.handles: list[Any] = []
        for m in self.modules:
            self.handles.append(m.register_forward_pre_hook(self._enter))
            self.handles.append(m.register_forward_hook(self._leave))

    def remove_hooks(self) -> None:
        """Detach every hook from the model."""
        for h in self.handles:
            h.remove()

    # -- module hooks -------------------------------------------------------------------------

    def _enter(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.stack.append(self.index[id(module)])

    def _leave(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        index = self.stack.pop()
        if not isinstance(module, _GEOMETRY_MODULES):
            return
        source = next((self.fields[t] for t in _tensors(args) if t in self.fields), None)
        if source is None:
            return
        if isinstance(module, _CONVS):
            self._record_dilation(index, module.dilation)
        dilation = getattr(module, "dilation", 1)
        rf, jump = _conv(source, module.kernel_size, module.stride, dilation, isinstance(module, nn.ConvTranspose2d))
        for t in _tensors(output):
            self.fields[t] = _Field(rf, jump, source.deps | self.fields[t].deps if t in self.fields else source.deps)

    def _record_dilation(self, index: int, dilation: Any) -> None:
        self.dilations.setdefault(index, set()).add(_pair(dilation)[0])

    # -- tensor operations --------------------------------------------------------------------

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        before = self.counter.get_total_flops()
        out = func(*args, **kwargs)
        owner = self.stack[-1] if self.stack else 0
        self.flops[owner] += self.counter.get_total_flops() - before
        outputs = list(_tensors(out))
        if not outputs:
            return out
        inputs = [t for t in _tensors((args, kwargs)) if t in self.fields]
        if not inputs:
            return out
        first = inputs[0]
        fields = [self.fields[t] for t in inputs]
        rf = tuple(max(f.rf[a] for f in fields) for a in (0, 1))
        deps = frozenset().union(*(f.deps for f in fields)) | {owner}
        jump = tuple(min(f.jump[a] for f in fields) for a in (0, 1))
        merged = _Field(rf, jump, deps)  # type: ignore[arg-type]
        name = getattr(func, "__name__", "")
        for t in outputs:
            self.fields[t] = self._rule(name, args, kwargs, first, merged, t, owner)
        return out

    def _rule(
        self, name: str, args: Sequence[Any], kwargs: dict[str, Any], x: Tensor, f: _Field, out: Tensor, owner: int
    ) -> _Field:
        """The field of ``out``, made by ``name`` from ``x`` (the first input with a field) and
        the branches' merged field ``f``."""
        if x.dim() != 4:
            if out.dim() != 4:
                return f
            # A map made from something without a grid (attention or codeword products viewed back
            # to (N, C, h, w)): its stride is the ratio of the image's size to its own.
            ratio = tuple(n / o for n, o in zip(self.image_hw, out.shape[-2:], strict=True))
            return _Field(f.rf, ratio, f.deps)  # type: ignore[arg-type]
        if out.dim() != 4:
            # (N, C, H, W) -> (N, H, W) (a reduction over channels) keeps the grid; anything else mixes space.
            return f if tuple(out.shape[-2:]) == tuple(x.shape[-2:]) else _Field(GLOBAL, f.jump, f.deps)
        hw_in, hw_out = tuple(x.shape[-2:]), tuple(out.shape[-2:])
        # Resampled by the size ratio: one output pixel steps over n / o pixels of the input map.
        scaled: Pair = tuple(j * n / o for j, n, o in zip(f.jump, hw_in, hw_out, strict=True))  # type: ignore[assignment]
        inside_geometry = isinstance(self.modules[owner], _GEOMETRY_MODULES)
        if name in ("conv2d", "conv_transpose2d") and not inside_geometry:
            weight = _arg(args, kwargs, 1, "weight", None)
            transposed = name == "conv_transpose2d"
            stride = _arg(args, kwargs, 3, "stride", 1)
            dilation = _arg(args, kwargs, 7 if transposed else 5, "dilation", 1)
            self._record_dilation(owner, dilation)
            rf, jump = _conv(f, tuple(weight.shape[-2:]), stride, dilation, transposed)
            return _Field(rf, jump, f.deps)
        if name in _POOL_FUNCTIONS and not inside_geometry:
            kernel = _arg(args, kwargs, 1, "kernel_size", 1)
            stride = _arg(args, kwargs, 2, "stride", None) or kernel
            dilation = _arg(args, kwargs, 4, "dilation", 1) if "max" in name else 1
            rf, jump = _conv(f, kernel, stride, dilation, transposed=False)
            return _Field(rf, jump, f.deps)
        if name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
            if hw_out == (1, 1):
                return _Field(GLOBAL, scaled, f.deps)
            bins = tuple(
                max(math.ceil((i + 1) * n / o) - (i * n) // o for i in range(o))
                for n, o in zip(hw_in, hw_out, strict=True)
            )
            rf = tuple(r + (b - 1) * j for r, b, j in zip(f.rf, bins, f.jump, strict=True))
            return _Field(rf, scaled, f.deps)  # type: ignore[arg-type]
        if name in ("interpolate", "upsample", "max_unpool2d") and hw_in != hw_out:
            mode = _arg(args, kwargs, 3, "mode", "nearest") if name != "max_unpool2d" else "nearest"
            taps = _TAPS.get(mode, max(math.ceil(n / o) for n, o in zip(hw_in, hw_out, strict=True)))
            rf = tuple(r + (taps - 1) * j for r, j in zip(f.rf, f.jump, strict=True))
            return _Field(rf, scaled, f.deps)  # type: ignore[arg-type]
        if hw_out == (1, 1) and hw_in != (1, 1) and name not in _KEEP_GRID:
            return _Field(GLOBAL, scaled, f.deps)  # a mean (or max) over space that keeps the dims
        return f


_POOL_FUNCTIONS = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices", "avg_pool2d"}
# Operations that may legitimately shrink a map to one pixel without looking at all of it.
_KEEP_GRID = {"__getitem__", "narrow", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "_max_pool2d"}


def _direct_params(module: nn.Module, counted: set[int]) -> int:
    """Parameters registered on ``module`` itself (not its children) and not counted before."""
    total = 0
    for p in module.parameters(recurse=False):
        if id(p) not in counted:
            counted.add(id(p))
            total += p.numel()
    return total


def summarize(model: nn.Module, size: int | Sequence[int] = (512, 512)) -> list[StageRow]:
    """The stages of a segmentation model at input size ``size``.

    Args:
        model: a :class:`~semseg.models.SegmentationModel` (anything with ``backbone``, ``head``,
            optional ``aux_heads`` and a ``forward(x, return_aux=True)``). Its input has
            ``len(model.mean)`` channels (3 when it has no ``mean``). Left in its mode afterwards.
        size: input ``(H, W)`` (or one number for a square).

    Returns:
        One :class:`StageRow` per backbone feature level, then the head and each aux head, then
        ``backbone (unused)`` and ``other`` when they hold parameters or FLOPs. The rows' params
        sum to ``sum(p.numel() for p in model.parameters())`` and their FLOPs to the counter's total.

    Shape:
        runs ``(1, in_channels, H, W)`` through the model once.
    """
    if not all(hasattr(model, a) for a in ("backbone", "head")):
        raise InvalidOptionError(
            f"summarize needs a segmentation model with .backbone and .head, got {type(model).__name__}"
        )
    h, w = _pair(size)
    if h < 1 or w < 1:
        raise InvalidOptionError(f"size must be positive H, W, got {tuple(size)}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros(1, len(getattr(model, "mean", (0, 0, 0))), h, w, device=device, dtype=dtype)

    captured: dict[str, Any] = {}
    stage_modules: dict[str, nn.Module] = {"backbone": model.backbone, "head": model.head}
    aux_heads = getattr(model, "aux_heads", {})
    for name, aux in aux_heads.items():
        stage_modules[f"aux_heads.{name}"] = aux
    capture_hooks = [
        m.register_forward_hook(lambda _m, _a, out, key=key: captured.setdefault(key, out))
        for key, m in stage_modules.items()
    ]
    counter = FlopCounterMode(display=False)
    walker = _Walker(model, counter, (h, w))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter, walker:
            walker.fields[x] = _Field((1.0, 1.0), (1.0, 1.0))
            model(x, return_aux=True) if aux_heads else model(x)
    finally:
        walker.remove_hooks()
        for hook in capture_hooks:
            hook.remove()
        model.train(was_training)
    return _rows(model, walker, captured, stage_modules, counter.get_total_flops())


def _rows(
    model: nn.Module, walker: _Walker, captured: dict[str, Any], stage_modules: dict[str, nn.Module], total_flops: int
) -> list[StageRow]:
    counted: set[int] = set()
    index = walker.index
    rows: list[StageRow] = []

    def stage(name: str, module_name: str, out: Tensor | None, members: set[int]) -> StageRow:
        f = walker.fields.get(out) if out is not None else None
        spatial = out is not None and out.dim() == 4 and f is not None
        dilations = sorted(set().union(*(walker.dilations.get(i, set()) for i in members)))
        return StageRow(
            name=name,
            module=module_name,
            shape=tuple(out.shape) if out is not None else (),
            stride=f.jump if spatial else None,
            dilations=tuple(dilations),
            receptive_field=f.rf if f is not None else None,
            params=sum(_direct_params(walker.modules[i], counted) for i in sorted(members)),
            flops=sum(walker.flops[i] for i in members),
        )

    backbone_members = {index[id(m)] for m in model.backbone.modules()}
    seen: set[int] = set()
    for level, feature in enumerate(captured.get("backbone") or []):
        f = walker.fields.get(feature) if isinstance(feature, Tensor) else None
        deps = (f.deps if f is not None else frozenset()) & backbone_members
        rows.append(stage(f"backbone[{level}]", type(model.backbone).__name__, feature, set(deps - seen)))
        seen |= deps
    owned: set[int] = set(backbone_members)
    for key, module in stage_modules.items():
        if key == "backbone":
            continue
        out = captured.get(key)
        out = out.logits if isinstance(out, HeadOutput) else out
        members = {index[id(m)] for m in module.modules()}
        owned |= members
        rows.append(stage(key, type(module).__name__, out if isinstance(out, Tensor) else None, members))
    for name, members in (
        ("backbone (unused)", backbone_members - seen),
        ("other", set(range(len(walker.modules))) - owned),
    ):
        row = stage(name, "", None, members)
        if row.params or row.flops:
            rows.append(row)
    other = total_flops - sum(r.flops for r in rows)
    if other:  # FLOPs the walker could not charge to a module: keep the total exact
        rows.append(StageRow("other", "", (), None, (), None, 0, other))
    return rows


def _number(n: float, units: Sequence[tuple[float, str]] = ((1e9, "G"), (1e6, "M"), (1e3, "K"))) -> str:
    for scale, unit in units:
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def _pair_text(p: Pair | None, global_word: str = "") -> str:
    if p is None:
        return "-"
    if math.isinf(p[0]) or math.isinf(p[1]):
        return global_word or "inf"
    a, b = (f"{v:.4g}" for v in p)
    return a if a == b else f"{a}x{b}"


def format_summary(rows: Sequence[StageRow], legend: bool = True) -> str:
    """A plain-text table of :func:`summarize`'s rows with a total line (and, with ``legend``,
    a few lines saying what the columns count)."""
    header = ("stage", "module", "output", "stride", "dilation", "RF", "params", "FLOPs")
    table = [header]
    for r in rows:
        table.append(
            (
                r.name,
                r.module,
                "x".join(map(str, r.shape)) or "-",
                _pair_text(r.stride),
                ",".join(map(str, r.dilations)) or "-",
                _pair_text(r.receptive_field, "global"),
                _number(r.params),
                _number(r.flops),
            )
        )
    params, flops = sum(r.params for r in rows), sum(r.flops for r in rows)
    table.append(("total", "", "", "", "", "", _number(params), _number(flops)))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    right = {3, 5, 6, 7}
    lines = []
    for n, row in enumerate(table):
        cells = [c.rjust(wd) if i in right else c.ljust(wd) for i, (c, wd) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0 or n == len(table) - 2:
            lines.append("  ".join("-" * wd for wd in widths))
    if legend:
        aux = sum(r.flops for r in rows if r.name.startswith("aux_heads."))
        lines += [
            f"parameters: {params:,}; FLOPs: {flops:,} = 2 x multiply-adds (torch.utils.flop_counter; "
            "normalisation, activations and interpolation not counted)"
            + (f"; without the aux heads (inference): {_number(flops - aux)}" if aux else ""),
            "stride and RF in input pixels; RF: theoretical receptive field, the maximum over branches; "
            "global: pooling or attention over the whole image",
        ]
    return "\n".join(lines)

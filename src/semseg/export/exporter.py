"""``semseg export``: a model as ONNX or a ``torch.export`` program, with dynamic batch, height
and width where the network allows it, checked against PyTorch on two input sizes.

The order of attempts: every axis dynamic; if the exporter refuses (an op that needs a fixed
input size, such as PSPNet's ``adaptive_avg_pool2d`` with bins 2, 3 and 6 under the TorchScript
exporter) or the exported graph differs from PyTorch at a second size (a shape-dependent Python
branch the trace froze), height and width are fixed at ``size`` and the reason is recorded;
if that fails too, :class:`~semseg.errors.ExportError` names the op.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from semseg.errors import DataError, ExportError, InvalidOptionError, SemsegError, allowed
from semseg.export.failure import failing_op, first_line
from semseg.export.metadata import AXES, model_metadata
from semseg.export.to_onnx import example_input

FORMATS = ("onnx", "torch-export")
SUFFIX = {"onnx": ".onnx", "torch-export": ".pt2"}
DEFAULT_OPSET = 17
OPSETS = range(11, 21)  # what the TorchScript exporter writes
# Parity: max |exported - PyTorch| <= ATOL + RTOL * max |PyTorch| (float32 kernels differ in
# summation order: ~1e-6 relative was measured on every exported network).
RTOL, ATOL = 1e-4, 1e-5
MIN_SIDE = 32


@dataclass
class Parity:
    """One comparison of the export with PyTorch: input shape ``(N, B, H, W)``, the largest
    absolute difference of the logits, that over the largest absolute PyTorch logit, and whether
    it is within the tolerance (``error``: why there is no number)."""

    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    ok: bool
    error: str | None = None  # the export failed to run, or gave another shape


@dataclass
class ExportReport:
    """What :func:`export_model` wrote: the file, its format, the dynamic axes, why height and
    width are fixed (``None`` when they are not), the parity checks and the time taken."""

    path: Path
    format: str
    dynamic: tuple[str, ...]
    static_reason: str | None
    checks: list[Parity] = field(default_factory=list)
    seconds: float = 0.0
    note: str | None = None

    def summary(self) -> str:
        """One line per fact, for the CLI."""
        dims = ", ".join(self.dynamic) if self.dynamic else "none"
        lines = [f"wrote {self.path} ({self.format}; dynamic axes: {dims}; {self.seconds:.1f} s)"]
        if self.static_reason:
            lines.append(f"height and width are fixed at the export size, as dynamic ones fail: {self.static_reason}")
        for c in self.checks:
            lines.append(
                f"parity {'x'.join(map(str, c.shape))}: max abs {c.max_abs:.2e}, max rel {c.max_rel:.2e} "
                f"({'within' if c.ok else 'OUTSIDE'} {ATOL:g} + {RTOL:g} * max|logit|)"
            )
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def second_size(size: Sequence[int]) -> tuple[int, int]:
    """The other input size of the parity check: not a multiple of 32 when ``size`` is one
    (64x64 -> 96x80), so a frozen shape branch shows."""
    return int(size[0]) + 32, int(size[1]) + 16


def check_shapes(size: Sequence[int], dynamic: Sequence[str]) -> list[tuple[int, int, int]]:
    """``(N, H, W)`` of the parity checks: the export size with batch 1, then the second size
    with batch 2 (when height and width are dynamic) or the export size with batch 2."""
    h, w = int(size[0]), int(size[1])
    if "height" in dynamic and "width" in dynamic:
        return [(1, h, w), (2, *second_size(size))]
    return [(1, h, w), (2, h, w)] if "batch" in dynamic else [(1, h, w)]


def compare(model: nn.Module, run: Callable[[Tensor], Tensor], shapes: Sequence[tuple[int, int, int]]) -> list[Parity]:
    """Logits of ``run`` (the export) against ``model`` on seeded normal inputs of ``shapes``."""
    out = []
    for n, h, w in shapes:
        x = example_input(model, (h, w), batch=n)
        with torch.no_grad():
            ref = model(x)
            try:
                got = run(x)
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as exc:  # a graph valid at one size only can fail at run time elsewhere
                out.append(Parity(tuple(x.shape), float("inf"), float("inf"), False, first_line(exc)))
                continue
        if tuple(got.shape) != tuple(ref.shape):
            error = f"output {tuple(got.shape)}, PyTorch {tuple(ref.shape)}"
            out.append(Parity(tuple(x.shape), float("inf"), float("inf"), False, error))
            continue
        max_abs = float((got.float() - ref.float()).abs().max())
        scale = float(ref.abs().max())
        out.append(Parity(tuple(x.shape), max_abs, max_abs / max(scale, 1e-12), max_abs <= ATOL + RTOL * scale))
    return out


def default_output(source: str, fmt: str) -> Path:
    """``RUN/model.onnx`` for a run or checkpoint folder, ``NAME.onnx`` here for a model name
    (``.pt2`` for torch-export)."""
    path = Path(source)
    stem = "model" if path.is_dir() else path.name.removesuffix(".safetensors") or "model"
    return (path if path.is_dir() else Path(".")) / f"{stem}{SUFFIX[fmt]}"


def export_model(
    model: nn.Module,
    out: str | Path,
    fmt: str = "onnx",
    size: Sequence[int] = (512, 512),
    opset: int = DEFAULT_OPSET,
    dynamo: bool = False,
    check: bool = True,
    overwrite: bool = False,
) -> ExportReport:
    """Export ``model`` (a :class:`~semseg.models.SegmentationModel`) to ``out``, atomically.

    Args:
        fmt: ``"onnx"`` or ``"torch-export"``.
        size: ``(H, W)`` of the example input (and the fixed size where height and width cannot
            be dynamic).
        opset: ONNX opset (11-20).
        dynamo: ONNX through ``torch.export`` instead of the TorchScript tracer.
        check: compare the export with PyTorch on two input sizes (ONNX needs onnxruntime; without
            it the check is skipped and the report says so).
        overwrite: replace an existing ``out``.

    Raises :class:`~semseg.errors.ExportError` naming the op when no export works, or when the
    export differs from PyTorch beyond the tolerance at the export size.
    """
    if fmt not in FORMATS:
        raise InvalidOptionError(f"export format {fmt!r}; expected one of {allowed(FORMATS)}")
    size = tuple(int(v) for v in size)
    if len(size) != 2 or min(size) < MIN_SIDE:
        raise InvalidOptionError(f"export size {size}; expected HxW with both sides >= {MIN_SIDE}")
    if opset not in OPSETS:
        raise InvalidOptionError(f"opset {opset}; expected {OPSETS.start}-{OPSETS.stop - 1}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise DataError(f"output folder not found: {out.parent}")
    if fmt == "onnx":
        for package in ("onnx", "onnxscript") if dynamo else ("onnx",):
            if not _installed(package):
                raise SemsegError(f'ONNX export needs {package}, which is not installed: pip install "semseg[onnx]"')
    model.eval()
    name = getattr(model, "model_name", None) or type(model).__name__
    start = time.perf_counter()
    reasons: list[str] = []
    for dynamic in (AXES, ("batch",)):
        try:
            artifact, run = _build(model, fmt, size, dynamic, opset, dynamo)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # each exporter has its own exception types
            reasons.append(failing_op(exc))
            continue
        checks: list[Parity] = []
        note = None
        if check and run is None:
            note = 'parity not checked: onnxruntime is not installed (pip install "semseg[onnx]")'
        elif check:
            checks = compare(model, run, check_shapes(size, dynamic))
            if not checks[0].ok:
                raise ExportError(
                    f"{name}: the {fmt} export differs from PyTorch at {size[0]}x{size[1]} ({_how(checks[0])})"
                )
            if not all(c.ok for c in checks):
                bad = next(c for c in checks if not c.ok)
                reasons.append(
                    f"the dynamic-size graph differs from PyTorch at {bad.shape[2]}x{bad.shape[3]} ({_how(bad)})"
                )
                continue
        _write(artifact, fmt, out)
        static = reasons[0] if dynamic != AXES else None
        return ExportReport(out, fmt, dynamic, static, checks, time.perf_counter() - start, note)
    exporter = "torch.export" if fmt == "torch-export" else ("ONNX dynamo exporter" if dynamo else "ONNX exporter")
    hint = ""
    if "adaptive_avg_pool2d" in reasons[-1]:  # ONNX pools adaptively only at a size the bins divide
        hint = "; pass a --size whose feature map its bins divide (PSPNet: sides that are multiples of 48)"
    elif fmt == "onnx" and not dynamo:
        hint = "; the torch.export-based exporter may manage it: --dynamo"
    raise ExportError(f"{name} cannot be exported with the {exporter}: {reasons[-1]}{hint}")


def _how(check: Parity) -> str:
    return check.error or f"max abs {check.max_abs:.2e}, max rel {check.max_rel:.2e}"


def _build(
    model: nn.Module, fmt: str, size: tuple[int, ...], dynamic: Sequence[str], opset: int, dynamo: bool
) -> tuple[object, Callable[[Tensor], Tensor] | None]:
    """The export (ONNX bytes or an ExportedProgram) and a function running it (``None`` for ONNX
    without onnxruntime)."""
    meta = model_metadata(model, (size[0], size[1]), tuple(dynamic), format=fmt)
    if fmt == "onnx":
        from semseg.export.to_onnx import onnx_bytes

        data = onnx_bytes(model, size, dynamic, opset, {**meta, "opset": opset}, dynamo=dynamo)
        if not _installed("onnxruntime"):
            return data, None
        from semseg.export.runtime import OnnxRuntimeModel

        return data, OnnxRuntimeModel(data)
    from semseg.export.to_torch_export import export_program

    program = export_program(model, size, dynamic)
    return (program, meta), program.module()


def _write(artifact: object, fmt: str, out: Path) -> None:
    tmp = out.with_name(f"{out.stem}.tmp{out.suffix}")  # the suffix kept: torch.export.save wants .pt2
    try:
        if fmt == "onnx":
            tmp.write_bytes(artifact)  # type: ignore[arg-type]
        else:
            from semseg.export.to_torch_export import save_program

            program, meta = artifact  # type: ignore[misc]
            save_program(program, tmp, meta)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def _installed(package: str) -> bool:
    try:
        importlib.import_module(package)
    except ImportError:
        return False
    return True

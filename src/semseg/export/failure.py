"""Naming the op behind a failed export, so the error says what the format cannot express.

The exporters fail in three ways: the ONNX TorchScript exporter raises
``UnsupportedOperatorError`` ("Exporting the operator 'aten::x' ...") or ``SymbolicValueError``
("Unsupported: ONNX export of operator x, ..."); a ``torch.nn.functional`` call fails while being
traced (SegNet's ``max_unpool2d`` checks its output size with Python ``bool``s); ``torch.export``
refuses a dynamic axis with the guard (a condition on the input size) the network needs.
"""

from __future__ import annotations

import re
import traceback
from pathlib import PurePath

_OP_PATTERNS = (
    re.compile(r"operator '(?:aten::)?([\w.]+)'"),  # UnsupportedOperatorError
    re.compile(r"ONNX export of operator ([\w.]+)"),  # SymbolicValueError
    re.compile(r"aten[.:]+([\w]+)"),  # dynamo / onnxscript: "aten.x.default" has no translation
)


def failing_op(exc: BaseException) -> str:
    """The op an export stopped at, e.g. ``adaptive_avg_pool2d`` or
    ``max_unpool2d (semseg/models/zoo/encdec.py:98)``; the exception's first line when no op can
    be told."""
    text = str(exc)
    for pattern in _OP_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    frames = traceback.extract_tb(exc.__traceback__)
    functional = [f for f in frames if PurePath(f.filename).as_posix().endswith("torch/nn/functional.py")]
    ours = [f for f in frames if "/semseg/models/" in PurePath(f.filename).as_posix()]
    where = ""
    if ours:
        path = PurePath(ours[-1].filename).as_posix()
        where = f"{path[path.rindex('semseg/models/') :]}:{ours[-1].lineno}"
    if functional:  # the outermost call: the public F.x the network made, not its helpers
        return f"{functional[0].name} ({where})" if where else functional[0].name
    return where or first_line(exc)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message``, cut at ``limit`` characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    if "Constraints violated" in line and len(lines) > 1:  # torch.export: the guard says why
        line = next((ln.lstrip("- ") for ln in lines[1:] if ln.startswith("-")), line)
    text = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."

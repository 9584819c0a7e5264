"""Reading a foreign checkpoint without running its code.

A ``.pth`` file is a pickle, and a pickle can call any function while it is read. semseg reads
``.safetensors`` files (pure tensors), and ``.pth``/``.pt``/``.ckpt`` files first with
``torch.load(weights_only=True)``, torch's own allow-list unpickler. Checkpoints written by a
training framework often carry bookkeeping objects beside the weights (mmengine's message hub,
numpy scalars in the metadata) that this unpickler refuses. For those, a second pass reads the
pickle with :class:`_InertUnpickler`: objects of a short list of bookkeeping namespaces
(``mmengine``, ``mmcv``, ``mmseg``, ``numpy``) become inert placeholders that are never called,
tensors are rebuilt as torch itself does, and any other global (``os.system``, ``builtins.eval``,
``subprocess``, ...) refuses the whole file.
"""

from __future__ import annotations

import pickle
import re
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

from semseg.errors import CheckpointError

# Namespaces whose objects are replaced by placeholders: training bookkeeping, never weights.
_INERT_PREFIXES = ("mmengine", "mmcv", "mmseg", "numpy", "argparse")
# The functions torch's own pickles need to rebuild tensors, and plain containers.
_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
}
for _name in ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"):
    _ALLOWED[("torch", _name)] = getattr(torch, _name)


class _Inert:
    """A bookkeeping object read as data only: whatever it was built from is kept, nothing runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert(*args, **kwargs)


class _InertUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module.split(".")[0] in _INERT_PREFIXES:
            return type(f"Inert_{name}", (_Inert,), {})
        raise CheckpointError(f"refusing the pickle: it would call {module}.{name} while loading")


# torch.load's ``pickle_module``: the module-like object it takes ``Unpickler`` and ``load`` from.
_inert_pickle = types.SimpleNamespace(Unpickler=_InertUnpickler, load=pickle.load, __name__="semseg_inert_pickle")


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # torch colours parts of its message
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def read_checkpoint_file(path: str | Path) -> Any:
    """The object stored in ``path`` (a ``.safetensors`` file gives its tensor dict).

    Raises :class:`~semseg.errors.CheckpointError` for a missing or unreadable file and for a
    pickle that would call anything but torch's tensor rebuilders while loading.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own types for a truncated or foreign file
            raise CheckpointError(f"cannot read {path}: {_first_line(exc)}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "weights_only" not in str(exc) and "Unsupported global" not in str(exc):
            raise CheckpointError(f"cannot read {path}: {_first_line(exc)}") from None
    try:
        # Only reached for a pickle with globals torch's allow-list lacks; see the module docstring.
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_inert_pickle)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except Exception as exc:
        raise CheckpointError(f"cannot read {path}: {_first_line(exc)}") from None


def state_dict_of(obj: Any, path: str | Path) -> dict[str, Tensor]:
    """The weights inside a loaded checkpoint: the object itself, or its ``state_dict``,
    ``model`` or ``model_state`` entry (training frameworks wrap the weights with metadata);
    a DataParallel ``module.`` prefix is removed."""
    for key in ("state_dict", "model_state", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path} holds no state dict (got {type(obj).__name__})")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors (keys: {', '.join(map(str, list(obj)[:5]))})")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors

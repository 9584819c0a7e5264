"""The numeric precisions one table serves to training, evaluation and ``semseg bench``.

=========  ==============================================================================
``auto``   bfloat16 autocast where the hardware computes it natively (AVX512-BF16/AMX CPUs,
           Ampere and newer GPUs), float32 elsewhere: emulated bf16 is slower than fp32
``fp32``   no autocast
``bf16``   bfloat16 autocast
``fp16``   float16 autocast, CUDA only (with a gradient scaler when training)
=========  ==============================================================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from semseg.constants import PRECISIONS
from semseg.errors import ConfigError, allowed


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; ``None`` means plain float32."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r}; allowed: {allowed(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


@contextlib.contextmanager
def autocast(precision: str, device: torch.device | str) -> Iterator[None]:
    """``torch.autocast`` for ``precision`` on ``device`` (a no-op for float32)."""
    device = torch.device(device)
    dtype = autocast_dtype(precision, device)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        yield

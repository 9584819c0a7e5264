"""The deterministic weights behind the mmsegmentation fixtures (tests/fixtures/convert/README.md).

A real-shape ResNet-50 checkpoint is ~100 MB even in float16, far over the fixtures' budget, and
semseg's networks have no width option a narrowed checkpoint could load into. So a fixture stores
the source's exact key names and shapes (``manifest.json``) and the source's outputs; the weights
are regenerated from the key names by :func:`fixture_weights`, the same function the generator
called before running the source network on them. ``weight_sum`` in the manifest proves that the
regenerated weights are the ones the outputs were computed with.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

FIXTURES = Path(__file__).parent / "fixtures" / "convert"


def fixture_weights(shapes: dict[str, list[int]], seed: int) -> dict[str, Tensor]:
    """Random weights for the state dict ``shapes`` (key -> shape), from ``seed`` and each key's
    CRC-32: He-normal conv/linear weights, batch-norm scales in [0.5, 1), biases and running means
    N(0, 0.1), running variances in [0.5, 1.5), so no layer is an identity a swap could hide behind."""
    out: dict[str, Tensor] = {}
    for key, shape in shapes.items():
        gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(0, dtype=torch.int64)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=gen) + 0.5
        elif len(shape) == 1 and key.endswith(".weight"):
            out[key] = torch.rand(shape, generator=gen) * 0.5 + 0.5
        elif len(shape) <= 1:
            out[key] = torch.randn(shape, generator=gen) * 0.1
        else:
            fan_in = math.prod(shape[1:])
            out[key] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
    return out


def weight_sum(tensors: dict[str, Tensor]) -> float:
    return float(sum(t.double().sum() for t in tensors.values()))


def read_manifest(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name / "manifest.json").read_text())


def test_fixture_weights_are_deterministic() -> None:
    shapes = {"a.conv.weight": [4, 3, 3, 3], "a.bn.weight": [4], "a.bn.running_var": [4], "b.bias": [4]}
    first, second = fixture_weights(shapes, 1), fixture_weights(shapes, 1)
    assert all(torch.equal(first[k], second[k]) for k in shapes)
    assert not torch.equal(first["a.conv.weight"], fixture_weights(shapes, 2)["a.conv.weight"])
    assert (first["a.bn.running_var"] >= 0.5).all() and (first["a.bn.weight"] >= 0.5).all()

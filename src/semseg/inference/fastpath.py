"""The inference fast path: an inference-only copy of a model with batch norm folded into the
convolutions before it.

In eval mode ``BN(conv(x)) = s * (W x + b - mu) + beta`` with ``s = gamma / sqrt(var + eps)``
per output channel, which is one convolution with weights ``s * W`` and bias
``s * (b - mu) + beta`` (Jacob et al., https://arxiv.org/abs/1712.05877, section 3.2): one pass
over each feature map instead of two. The other switches of the fast path are applied where the
model runs (:class:`~semseg.inference.Predictor`): ``torch.inference_mode``, the model's own
memory layout (channels-last for every model measured faster so, see ``create_model``) and
bf16 autocast through ``precision``.

Folding is found by tracing, not by module names: one forward pass at a small size records
which tensor each leaf module produced and (through a ``TorchFunctionMode``) how many ops read
each of them; a BatchNorm whose input is a ``Conv2d``'s output that nothing else reads (no
residual add, no in-place ReLU in between) is folded. As a safety net the folded copy is then
checked against the original on a random input and thrown away if they differ beyond the
tolerance. The caller's model is never
changed (a model that is trained later keeps its BatchNorm layers).

Tolerance: the folded network's logits stay within ``1e-4 * (1 + max|logit|)`` of the plain
network's in float32 (measured about 1e-6 relative on ResNet-50 models).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

FOLD_TOLERANCE = 1e-4
"""Largest accepted ``max|folded - plain| / (1 + max|plain|)`` on the check input."""

_NORMS = (nn.BatchNorm2d, nn.SyncBatchNorm)


def fast_inference_model(model: nn.Module, check_size: int = 64) -> nn.Module:
    """An eval-mode copy of ``model`` for inference, with batch norm folded where that is exact.

    Args:
        model: a segmentation model (or its DDP wrapper, whose inner module is copied).
        check_size: side of the random input of the trace and the equality check.

    Returns:
        The folded copy, or an eval-mode copy without folding where the check failed or the
        model has nothing to fold. Its state dict differs from the original's (no BN entries):
        it is for inference only. Metadata attributes (``mean``, ``class_names``, ...) are kept.
    """
    inner = getattr(model, "module", model)
    folded = copy.deepcopy(inner).eval()
    folded.inference_only = True  # tells Predictor not to fold it again
    pairs = _conv_bn_pairs(folded, check_size)
    if not pairs:
        return folded
    example = _example(folded, check_size)
    with torch.no_grad():
        plain = _logits(folded(example)) if example is not None else None
        for conv, norm, parent, name in pairs:
            _fold(conv, norm)
            setattr(parent, name, nn.Identity())
        if plain is not None:
            out = _logits(folded(example))
            scale = 1.0 + float(plain.abs().max())
            if out.shape != plain.shape or float((out - plain).abs().max()) > FOLD_TOLERANCE * scale:
                plain_copy = copy.deepcopy(inner).eval()  # something read a conv output besides its BN
                plain_copy.inference_only = True
                return plain_copy
    return folded


def fold_stats(original: nn.Module, fast: nn.Module) -> dict[str, int]:
    """How many BatchNorm layers the fast copy still has, of how many (for reports and tests)."""

    def count(m: nn.Module) -> int:
        return sum(isinstance(x, _NORMS) for x in m.modules())

    return {"batchnorms": count(getattr(original, "module", original)), "left": count(fast)}


def _conv_bn_pairs(model: nn.Module, size: int) -> list[tuple[nn.Conv2d, nn.Module, nn.Module, str]]:
    """``(conv, bn, bn's parent, bn's attribute name)`` for every BN whose input is a conv's output
    that nothing else reads."""
    example = _example(model, size)
    if example is None:
        return []
    produced: dict[int, tuple[nn.Module, Tensor]] = {}  # tensor id -> (leaf module, tensor kept alive)
    reads: dict[int, int] = {}  # tensor id -> how many tensor-producing ops read it
    inputs: dict[nn.Module, set[int]] = {}  # BN -> ids of the tensors it was given

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if isinstance(module, _NORMS):
            inputs.setdefault(module, set()).update(id(a) for a in args if isinstance(a, Tensor))
        if isinstance(output, Tensor):
            produced[id(output)] = (module, output)

    class CountReads(TorchFunctionMode):
        # Every torch function and Tensor method passes here (nested calls do not): an op that
        # makes a tensor from a conv's output is a read; metadata (shape, dim) makes no tensor.
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if any(isinstance(o, Tensor) for o in _flat(out)):
                for a in _flat((args, kwargs)):
                    if isinstance(a, Tensor) and id(a) in produced:
                        reads[id(a)] = reads.get(id(a), 0) + 1
            return out

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad(), CountReads():
            model(example)
    except Exception:  # a model that cannot run the check input is simply not folded
        return []
    finally:
        for h in handles:
            h.remove()
    parents = {child: (parent, name) for parent in model.modules() for name, child in parent.named_children()}
    convs_used: dict[nn.Module, int] = {}
    pairs = []
    for norm, ids in inputs.items():
        if len(ids) != 1 or norm not in parents:
            continue  # called on several tensors: its input is not one conv's output
        (tid,) = ids
        conv = produced.get(tid, (None,))[0]
        if isinstance(conv, nn.Conv2d) and reads.get(tid) == 1 and _foldable(conv, norm):
            convs_used[conv] = convs_used.get(conv, 0) + 1
            pairs.append((conv, norm, *parents[norm]))
    return [p for p in pairs if convs_used[p[0]] == 1]  # a conv shared by two BNs keeps both


def _flat(tree: Any) -> list[Any]:
    if isinstance(tree, (list, tuple)):
        return [x for item in tree for x in _flat(item)]
    if isinstance(tree, dict):
        return [x for item in tree.values() for x in _flat(item)]
    return [tree]


def _foldable(conv: nn.Conv2d, norm: nn.Module) -> bool:
    return (
        getattr(norm, "running_mean", None) is not None
        and getattr(norm, "track_running_stats", False)
        and conv.out_channels == norm.num_features  # type: ignore[attr-defined]
    )


def _fold(conv: nn.Conv2d, norm: nn.Module) -> None:
    """Fold ``norm`` (eval statistics) into ``conv`` in place, in float64 for the arithmetic."""
    var, mean = norm.running_var.double(), norm.running_mean.double()  # type: ignore[union-attr]
    gamma = norm.weight.double() if norm.weight is not None else torch.ones_like(var)  # type: ignore[union-attr]
    beta = norm.bias.double() if norm.bias is not None else torch.zeros_like(var)  # type: ignore[union-attr]
    scale = gamma / torch.sqrt(var + norm.eps)  # type: ignore[operator]
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(var)
    weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
    layout = torch.channels_last if conv.weight.is_contiguous(memory_format=torch.channels_last) else None
    new_weight = weight.to(conv.weight.dtype)
    conv.weight = nn.Parameter(new_weight.contiguous(memory_format=layout) if layout else new_weight)
    conv.bias = nn.Parameter(((bias - mean) * scale + beta).to(conv.weight.dtype))


def _example(model: nn.Module, size: int) -> Tensor | None:
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    param = next(model.parameters(), None)
    if first is None or param is None:
        return None
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, first.in_channels, size, size, generator=generator)
    return x.to(param.device, param.dtype)


def _logits(out: Any) -> Tensor:
    if isinstance(out, dict):
        return out["out"]
    if isinstance(out, tuple):
        return out[0]
    return getattr(out, "logits", out)

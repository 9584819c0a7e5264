"""Shared backbone rules: validating ``output_stride`` and ``multi_grid``, and the per-stage
stride/dilation plan that turns a classification network into a dilated (atrous) one.

DeepLab (https://arxiv.org/abs/1606.00915) keeps resolution by removing the stride of the last
stages and dilating their convolutions by the stride that was removed, so the receptive field
stays what the pretrained weights expect.
"""

from __future__ import annotations

from collections.abc import Sequence

from semseg.errors import InvalidOptionError, allowed

OUTPUT_STRIDES = (8, 16, 32)


def check_output_stride(output_stride: int, allowed_strides: Sequence[int] = OUTPUT_STRIDES) -> None:
    """Raise ``InvalidOptionError`` (a ``ValueError``) unless ``output_stride`` is allowed."""
    if output_stride not in allowed_strides:
        raise InvalidOptionError(
            f"output_stride={output_stride!r} is not possible here; allowed: {allowed(allowed_strides)}"
        )


def check_multi_grid(multi_grid: Sequence[int] | None, num_blocks: int) -> tuple[int, ...]:
    """Validate multi-grid unit rates for a last stage of ``num_blocks`` blocks.

    DeepLabv3 (https://arxiv.org/abs/1706.05587) multiplies the last stage's dilation by
    ``multi_grid[i]`` in block ``i``; the paper's default is ``(1, 2, 4)`` for 3 blocks.
    """
    if multi_grid is None:
        return (1,) * num_blocks
    grid = tuple(multi_grid)
    if len(grid) != num_blocks or not all(isinstance(g, int) and g >= 1 for g in grid):
        raise InvalidOptionError(
            f"multi_grid={grid!r} must be {num_blocks} positive integers (one per block of the "
            f"last stage), e.g. {(1, 2, 4)[:num_blocks] if num_blocks == 3 else (1,) * num_blocks}"
        )
    return grid


def stage_plan(output_stride: int, stage_strides: Sequence[int]) -> list[tuple[int, int]]:
    """Per stage ``(stride, dilation)`` so the network's total stride is ``output_stride``.

    ``stage_strides`` are the nominal strides of the stages after the stem (whose stride is
    ``32 / prod(stage_strides)``). Once the running stride reaches ``output_stride`` each further
    stride-2 stage gets stride 1 and doubles the dilation instead.
    """
    current = 32
    for s in stage_strides:
        current //= s
    plan: list[tuple[int, int]] = []
    dilation = 1
    for s in stage_strides:
        if current * s > output_stride:
            dilation *= s
            plan.append((1, dilation))
        else:
            current *= s
            plan.append((s, dilation))
    return plan

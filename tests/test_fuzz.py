"""Property-based checks (hypothesis, bounded to run in seconds): paired transforms keep image and
mask aligned and the mask's values in the label set; confusion-matrix scores stay in range and
do not depend on how classes are numbered; the config parser and the list-file parser answer any
input with success or their one typed error, never another exception."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from semseg.config import Config, apply_overrides, from_dict
from semseg.data.folder import pairs_from_list
from semseg.data.transforms import ColorJitter, RandomCrop, RandomHorizontalFlip, RandomScale, train_transform
from semseg.errors import ConfigError, DataError
from semseg.metrics import ConfusionMatrix

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
IGNORE = 255
# Each class's grey level, far apart, and the ignored regions' own level; padding is 0.
CODES = (20, 55, 90, 125, 160, 195, 230)
IGNORE_CODE = 250


# ---------------------------------------------------------------- paired transforms


@st.composite
def encoded_pairs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A mask of square blocks (>= 4 pixels wide, so no region vanishes at scale 0.5) with ids in
    ``0..n-1`` and 255, and a uint8 image whose grey level encodes each pixel's id."""
    n = draw(st.integers(1, len(CODES)))
    grid = draw(
        arrays(
            np.int64, (draw(st.integers(1, 5)), draw(st.integers(1, 5))), elements=st.sampled_from([*range(n), IGNORE])
        )
    )
    block = draw(st.integers(4, 8))
    mask = torch.from_numpy(np.kron(grid, np.ones((block, block), dtype=np.int64)))
    lut = torch.tensor([*CODES[:n], *([0] * (IGNORE - n)), IGNORE_CODE], dtype=torch.uint8)
    image = lut[mask].expand(3, -1, -1).contiguous()
    return image, mask, n


def _interior(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels whose ``(2r+1)``-square lies inside the map and holds one label only."""
    m = mask[None, None].float()
    k = 2 * radius + 1
    hi = F.max_pool2d(m, k, 1, radius)
    lo = -F.max_pool2d(-m, k, 1, radius)
    h, w = mask.shape
    inside = torch.zeros_like(mask, dtype=torch.bool)
    inside[radius : h - radius, radius : w - radius] = True
    return (hi == lo)[0, 0] & inside


def _check_aligned(image: torch.Tensor, mask: torch.Tensor, n: int, radius: int) -> None:
    assert image.dtype == torch.uint8 and mask.dtype == torch.int64
    assert image.shape[1:] == mask.shape
    assert set(mask.unique().tolist()) <= {*range(n), IGNORE}, "a resampled mask invented a label"
    expected = torch.tensor([*CODES[:n], *([0] * (IGNORE - n)), IGNORE_CODE], dtype=torch.uint8)[mask]
    padded = (mask == IGNORE) & (image[0] == 0)
    check = _interior(mask, radius) & ~padded
    assert torch.equal(image[0][check], expected[check]), "image and mask disagree away from region borders"


@FUZZ
@given(
    pair=encoded_pairs(),
    seed=st.integers(0, 2**32 - 1),
    crop=st.tuples(st.integers(1, 48), st.integers(1, 48)),
    scale=st.tuples(st.floats(0.5, 2.0), st.floats(0.5, 2.0)).map(sorted),
    flip=st.booleans(),
)
def test_train_transform_keeps_image_and_mask_aligned(
    pair: tuple[torch.Tensor, torch.Tensor, int], seed: int, crop: tuple[int, int], scale: list[float], flip: bool
) -> None:
    image, mask, n = pair
    random.seed(seed)
    out_image, out_mask = train_transform(crop, (scale[0], scale[1]), flip)(image, mask)
    assert out_image.shape == (3, *crop)
    # Bilinear image vs nearest mask differ only within a few pixels of a region border.
    _check_aligned(out_image, out_mask, n, radius=2 + math.ceil(scale[1]))


@FUZZ
@given(pair=encoded_pairs(), seed=st.integers(0, 2**32 - 1), crop=st.tuples(st.integers(1, 48), st.integers(1, 48)))
def test_crop_and_flip_move_image_and_mask_together_exactly(
    pair: tuple[torch.Tensor, torch.Tensor, int], seed: int, crop: tuple[int, int]
) -> None:
    image, mask, n = pair
    random.seed(seed)
    out_image, out_mask = RandomHorizontalFlip(p=1.0)(*RandomCrop(crop)(image, mask))
    _check_aligned(out_image, out_mask, n, radius=0)  # no resampling: every pixel agrees


@FUZZ
@given(pair=encoded_pairs(), seed=st.integers(0, 2**32 - 1), low=st.floats(0.05, 4.0), high=st.floats(0.05, 4.0))
def test_scale_keeps_labels_and_jitter_leaves_the_mask(
    pair: tuple[torch.Tensor, torch.Tensor, int], seed: int, low: float, high: float
) -> None:
    image, mask, n = pair
    random.seed(seed)
    lo, hi = sorted((low, high))
    out_image, out_mask = RandomScale((lo, hi))(image, mask)
    assert set(out_mask.unique().tolist()) <= {*range(n), IGNORE} and out_image.shape[1:] == out_mask.shape
    jittered, same = ColorJitter(0.5, 0.5, 0.5)(image, mask)
    assert same is mask and jittered.dtype == torch.uint8 and jittered.shape == image.shape


# ---------------------------------------------------------------- metrics


@st.composite
def labelled(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, int]:
    n = draw(st.integers(1, 8))
    size = draw(st.integers(0, 200))
    pred = draw(arrays(np.int64, size, elements=st.integers(0, n - 1)))
    target = draw(arrays(np.int64, size, elements=st.sampled_from([*range(n), IGNORE])))
    return torch.from_numpy(pred), torch.from_numpy(target), n


def _scores(pred: torch.Tensor, target: torch.Tensor, n: int) -> dict[str, object]:
    cm = ConfusionMatrix(n)
    cm.update(pred, target)
    return cm.compute()


@FUZZ
@given(data=labelled(), seed=st.integers(0, 2**32 - 1))
def test_iou_in_range_and_miou_independent_of_class_numbering(
    data: tuple[torch.Tensor, torch.Tensor, int], seed: int
) -> None:
    pred, target, n = data
    scores = _scores(pred, target, n)
    for iou in scores["iou"]:  # type: ignore[attr-defined]
        assert math.isnan(iou) or 0.0 <= iou <= 1.0
    miou = scores["miou"]
    assert math.isnan(miou) or 0.0 <= miou <= 1.0  # type: ignore[operator, arg-type]
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    permuted_target = torch.where(target == IGNORE, target, perm[target.clamp(max=n - 1)])
    permuted = _scores(perm[pred], permuted_target, n)
    if math.isnan(miou):  # type: ignore[arg-type]
        assert math.isnan(permuted["miou"])  # type: ignore[arg-type]
    else:
        assert permuted["miou"] == pytest.approx(miou, abs=1e-12)
    # each class's IoU moves with its id
    for old, new in enumerate(perm.tolist()):
        a, b = scores["iou"][old], permuted["iou"][new]  # type: ignore[index]
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)


# ---------------------------------------------------------------- config parser

KEYS = [f"{section}.{key}" for section, values in Config().to_dict().items() for key in values]
TRICKY_VALUES = [
    "", "~", "null", "yes", "on", ".nan", ".inf", "-.inf", "1e400", "-1", "0", "0x1F", "0o17", "1_000",
    "2020-99-99", "2020-01-01", "12:30:00", "[1, 2", "{a: 1", "[1, 2]", "[[1]]", "{}", "[]", "'x'", '"\\x"',
    "&a [*a]", "*undefined", "!!binary AAAA", "!!int abc", "!!float x", "!!python/object:os.system {}",
    "!!set {a, b}", "? a", "- a", "a: b: c", "%YAML 1.1", "---", "...", "\x00", "\ud800",
]  # fmt: skip
yaml_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@FUZZ
@given(
    items=st.lists(
        st.tuples(
            st.sampled_from(KEYS)
            | st.sampled_from(["model.options.x", "model.options.", "a", "a.b.c", ".", ""])
            | st.text(max_size=12),
            st.sampled_from(TRICKY_VALUES) | st.text(max_size=12) | yaml_values.map(repr),
            st.booleans(),
        ),
        max_size=4,
    )
)
@example(items=[("train.seed", "2020-99-99", True)])  # YAML reads a date: ValueError from datetime
@example(items=[("train.lr", "!!float x", True)])  # an explicit tag whose constructor fails
@example(items=[("data.root", "!!int abc", True)])
def test_overrides_answer_with_config_error_or_success(items: list[tuple[str, str, bool]]) -> None:
    overrides = [f"{key}={value}" if with_equals else key + value for key, value, with_equals in items]
    try:
        apply_overrides(Config(), overrides)
    except ConfigError:
        pass


@FUZZ
@given(
    data=st.dictionaries(
        st.sampled_from(["model", "data", "train", "eval", "output"]) | st.text(max_size=6),
        st.dictionaries(st.sampled_from([k.split(".")[1] for k in KEYS]) | st.text(max_size=6), yaml_values, max_size=4)
        | yaml_values,
        max_size=4,
    )
)
def test_from_dict_answers_with_config_error_or_success(data: dict[str, object]) -> None:
    try:
        from_dict(data)  # type: ignore[arg-type]
    except ConfigError:
        pass


# ---------------------------------------------------------------- list-file parser


@pytest.fixture(scope="module")
def list_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("lists")
    for name in ("images/a.png", "masks/a.png", "images/b c.png", "masks/b c.png", "images/é.jpg", "masks/é.png"):
        (base / name).parent.mkdir(exist_ok=True)
        (base / name).write_bytes(b"x")
    return base


NAMES = ["images/a.png", "masks/a.png", "images/b c.png", "masks/b c.png", "images/é.jpg", "masks/é.png", "missing"]
lines = (
    st.lists(st.sampled_from(NAMES) | st.text(max_size=10), min_size=0, max_size=3).map(lambda parts: " ".join(parts))
    | st.builds(lambda a, b: f"{a}\t{b}", st.sampled_from(NAMES), st.sampled_from(NAMES))
    | st.text(max_size=30)
)


@FUZZ
@given(text=st.lists(lines, max_size=6).map("\n".join) | st.text(), raw=st.binary(max_size=40), use_raw=st.booleans())
def test_list_parser_answers_with_data_error_or_pairs(list_base: Path, text: str, raw: bytes, use_raw: bool) -> None:
    list_file = list_base / "split.txt"
    list_file.write_bytes(raw if use_raw else text.encode("utf-8", "surrogatepass"))
    try:
        pairs = pairs_from_list(list_file, list_base)
    except DataError:
        return
    for image, mask in pairs:
        assert image.is_file() and mask.is_file()

"""The fast data path: fused scale+crop against the two-step path, the libspng PNG decode against
Pillow, and the uint8 label-map lookup against the int64 one."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semseg.data import io as data_io
from semseg.data.base import SegmentationDataset
from semseg.data.transforms import (
    Compose,
    RandomCrop,
    RandomScale,
    RandomScaleCrop,
    resize_pair,
    resize_window,
    train_transform,
)
from semseg.errors import DataError

CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"


def textured(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """uint8 (3, h, w): smooth gradients plus noise, so a misplaced sample shows."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([x * 200, y * 200, (x + y) * 100]) + torch.rand(3, h, w, generator=g) * 55
    return base.round().clamp(0, 255).to(torch.uint8)


def labels(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 12, (h, w), generator=g).long()


def both(image: torch.Tensor, mask: torch.Tensor, crop: tuple[int, int], scale: tuple[float, float], seed: int):
    random.seed(seed)
    two = Compose([RandomScale(scale), RandomCrop(crop)])(image, mask)
    random.seed(seed)
    one = RandomScaleCrop(crop, scale)(image, mask)
    return two, one


@pytest.mark.parametrize("scale", [(1.0, 2.0), (0.5, 1.0), (0.4, 2.5)])
def test_fused_scale_crop_matches_resize_then_crop(scale: tuple[float, float]) -> None:
    image, mask = textured(61, 83), labels(61, 83)
    worst = 0.0
    for seed in range(40):
        (img2, msk2), (img1, msk1) = both(image, mask, (40, 48), scale, seed)
        assert img1.shape == img2.shape == (3, 40, 48) and img1.dtype == torch.uint8
        assert torch.equal(msk1, msk2), f"seed {seed}: the mask must be exactly the two-step one"
        worst = max(worst, (img1.float() - img2.float()).abs().mean().item())
    assert worst <= 0.5, f"mean abs diff {worst:.3f} grey levels"


def test_fused_on_a_non_contiguous_mask() -> None:
    image, mask = textured(41, 37), labels(37, 41).t()  # a transposed view: the index_select branch
    for seed in range(10):
        (_, msk2), (_, msk1) = both(image, mask, (30, 30), (0.5, 2.0), seed)
        assert torch.equal(msk1, msk2)


def test_fused_draws_the_same_numbers_as_the_two_steps() -> None:
    """Same draws from `random` (scale, top, left): the stream after the transform is the same."""
    image, mask = textured(30, 40), labels(30, 40)
    random.seed(3)
    Compose([RandomScale((0.5, 2.0)), RandomCrop((16, 16))])(image, mask)
    after_two = random.random()
    random.seed(3)
    RandomScaleCrop((16, 16), (0.5, 2.0))(image, mask)
    assert random.random() == after_two


def test_fused_pads_with_zero_and_ignore_when_smaller_than_the_crop() -> None:
    image, mask = textured(20, 24), labels(20, 24)
    random.seed(0)
    img, msk = RandomScaleCrop((64, 64), (0.5, 0.5))(image, mask)
    assert img.shape == (3, 64, 64) and msk.shape == (64, 64)
    assert (msk[10:] == 255).all() and (msk[:, 12:] == 255).all() and (img[:, 10:] == 0).all()
    assert (msk[:10, :12] != 255).all()


def test_resize_window_of_the_whole_image_is_resize_pair() -> None:
    image, mask = textured(45, 70), labels(45, 70)
    for size in [(90, 140), (70, 100), (30, 50)]:
        full, _ = resize_pair(image, mask, size)
        assert torch.equal(resize_window(image, size, (0, 0, *size)), full)


def test_resize_window_on_a_channels_last_view() -> None:
    image = textured(33, 47)
    view = image.permute(1, 2, 0).contiguous().permute(2, 0, 1)  # how read_image(contiguous=False) hands it
    a = resize_window(image, (66, 94), (5, 7, 40, 50))
    assert torch.equal(resize_window(view, (66, 94), (5, 7, 40, 50)), a) and a.is_contiguous()


def test_train_transform_is_fused() -> None:
    assert isinstance(train_transform((32, 32)).transforms[0], RandomScaleCrop)


@pytest.mark.skipif(not (CAMVID / "train.txt").is_file(), reason="CamVid not found at ../shared/data/camvid")
def test_fused_on_real_camvid() -> None:
    from semseg.data import build_dataset

    ds = build_dataset("camvid", str(CAMVID), "train")
    image, mask = ds.load_pair(0, contiguous=False)
    for seed in range(12):
        (img2, msk2), (img1, msk1) = both(image, mask, (288, 288), (0.5, 2.0), seed)
        assert torch.equal(msk1, msk2)
        assert (img1.float() - img2.float()).abs().mean().item() <= 0.5


# ----------------------------------------------------------------------------- PNG decode


def _pillow_rgb(path: Path) -> torch.Tensor:
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)


def test_png_fast_path_matches_pillow(tmp_path: Path) -> None:
    pytest.importorskip("pyspng", reason="the fast PNG decode needs pyspng (the fast extra)")
    rgb = textured(37, 53).permute(1, 2, 0).numpy()
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "grey.png")
    assert data_io._read_png_fast(tmp_path / "rgb.png", (0, 2)) is not None  # the fast path ran
    for name in ("rgb.png", "grey.png"):
        image = data_io.read_image(tmp_path / name)
        assert image.is_contiguous() and torch.equal(image, _pillow_rgb(tmp_path / name))
        view = data_io.read_image(tmp_path / name, contiguous=False)
        assert torch.equal(view, image)
    mask = data_io.read_mask(tmp_path / "grey.png")
    assert mask.dtype == np.uint8 and np.array_equal(mask, rgb[:, :, 0])


def test_png_fast_path_leaves_other_pngs_to_pillow(tmp_path: Path) -> None:
    pytest.importorskip("pyspng", reason="the fast PNG decode needs pyspng (the fast extra)")
    pal = Image.fromarray(np.arange(20, dtype=np.uint8).reshape(4, 5)).convert("P")
    pal.save(tmp_path / "p.png")
    Image.fromarray(np.full((4, 5), 1000, dtype=np.uint16)).save(tmp_path / "i16.png")
    exif = Image.Exif()
    exif[data_io.EXIF_ORIENTATION] = 6
    Image.fromarray(textured(8, 12).permute(1, 2, 0).numpy()).save(tmp_path / "exif.png", exif=exif.tobytes())
    for name in ("p.png", "i16.png", "exif.png"):
        assert data_io._read_png_fast(tmp_path / name, (0, 2)) is None, name
    assert data_io.read_image(tmp_path / "exif.png").shape == (3, 12, 8)  # upright by Pillow
    assert data_io.read_mask(tmp_path / "p.png").tolist() == np.arange(20).reshape(4, 5).tolist()


def test_damaged_png_is_still_an_error(tmp_path: Path) -> None:
    pytest.importorskip("pyspng", reason="the fast PNG decode needs pyspng (the fast extra)")
    path = tmp_path / "a.png"
    Image.fromarray(textured(40, 50).permute(1, 2, 0).numpy()).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside IDAT: the CRC no longer matches
    path.write_bytes(bytes(data))
    assert data_io._read_png_fast(path, (0, 2)) is None
    with pytest.raises(DataError, match=r"a\.png"):
        data_io.read_image(path)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(DataError, match=r"a\.png"):
        data_io.read_image(path)


def test_png_fast_path_keeps_the_pixel_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyspng", reason="the fast PNG decode needs pyspng (the fast extra)")
    Image.fromarray(np.zeros((30, 30), dtype=np.uint8)).save(tmp_path / "m.png")
    monkeypatch.setattr(data_io, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match="cap"):
        data_io.read_mask(tmp_path / "m.png")


# ----------------------------------------------------------------------------- label map


def _dataset(tmp_path: Path, raw: np.ndarray, table: np.ndarray, classes: int) -> SegmentationDataset:
    Image.fromarray(raw).save(tmp_path / "m.png")
    Image.fromarray(np.zeros((*raw.shape, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    names = [f"c{i}" for i in range(classes)]
    return SegmentationDataset([(tmp_path / "i.png", tmp_path / "m.png")], names, [(0, 0, 0)] * classes, table)


def test_uint8_label_lookup_equals_the_int64_table(tmp_path: Path) -> None:
    raw = np.random.default_rng(0).integers(0, 32, (17, 19)).astype(np.uint8)
    table = np.full(256, 255, dtype=np.int64)
    table[:11] = np.arange(11)[::-1]
    mask = _dataset(tmp_path, raw, table, 11).load_mask(tmp_path / "m.png")
    assert mask.dtype == torch.int64 and torch.equal(mask, torch.from_numpy(table[raw]))


def test_a_table_entry_outside_the_classes_still_raises_where_used(tmp_path: Path) -> None:
    raw = np.zeros((4, 4), dtype=np.uint8)
    table = np.full(256, 255, dtype=np.int64)
    table[1] = 40  # out of range, but only a problem where a pixel holds raw id 1
    ds = _dataset(tmp_path, raw, table, 3)
    assert int(ds.load_mask(tmp_path / "m.png").max()) == 255
    raw[2, 2] = 1
    Image.fromarray(raw).save(tmp_path / "m.png")
    with pytest.raises(DataError, match="40"):
        ds.load_mask(tmp_path / "m.png")

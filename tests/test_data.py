"""CamVid and folder datasets, paired transforms, and clear errors for bad trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semseg.data.build import SAMPLE_ROOT, CachedDataset, build_dataset
from semseg.data.camvid import CLASSES, CamVid
from semseg.data.folder import FolderDataset
from semseg.data.transforms import ColorJitter, RandomCrop, RandomHorizontalFlip, RandomScale, train_transform
from semseg.errors import ConfigError, DataError


def _write_pair(root: Path, stem: str, size=(12, 8), mask_value: int = 1, mask_size=None) -> None:  # type: ignore[no-untyped-def]
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 100, np.uint8)).save(root / "images" / f"{stem}.png")
    ms = mask_size or size
    Image.fromarray(np.full((ms[1], ms[0]), mask_value, np.uint8)).save(root / "masks" / f"{stem}.png")


def test_camvid_real_items(camvid_root: Path) -> None:
    train, val = CamVid(camvid_root, "train"), CamVid(camvid_root, "val")
    assert (len(train), len(val)) == (367, 101)
    image, mask = val[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 360, 480)
    assert mask.dtype == torch.int64 and mask.shape == (360, 480)
    raw = np.asarray(Image.open(val.pairs[0][1]))
    assert torch.equal(mask == 255, torch.from_numpy(raw == 11))  # void -> ignore
    assert set(mask.unique().tolist()) <= set(range(11)) | {255}


def test_embedded_sample() -> None:
    ds = build_dataset("sample", None, "train")
    assert len(ds) == 32 and ds.classes == list(CLASSES)
    image, mask = ds[0]
    assert image.shape == (3, 180, 240) and mask.shape == (180, 240)
    assert (SAMPLE_ROOT / "README.md").is_file()


def test_folder_dataset_pairs_by_stem(tmp_path: Path) -> None:
    _write_pair(tmp_path, "a", mask_value=0)
    _write_pair(tmp_path, "b", mask_value=255)
    ds = FolderDataset(tmp_path, ["bg", "fg"])
    assert [p[0].stem for p in ds.pairs] == ["a", "b"]
    assert ds[1][1].unique().tolist() == [255]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda r: None, "dataset folder not found"),
        (lambda r: (_write_pair(r, "a"), (r / "masks" / "a.png").unlink()), "has no mask"),
        (lambda r: _write_pair(r, "a", mask_size=(6, 8)), "mask is 6x8 but image a.png is 12x8"),
        (lambda r: _write_pair(r, "a", mask_value=7), r"label values \[7\] outside the 2 classes"),
        (lambda r: (_write_pair(r, "a"), (r / "images" / "a.png").write_bytes(b"not a png")), "cannot read image"),
    ],
    ids=["missing-folder", "image-without-mask", "size-mismatch", "label-out-of-range", "corrupt-image"],
)
def test_bad_trees_name_the_culprit(tmp_path: Path, setup, message: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "ds"
    setup(root)
    with pytest.raises(DataError, match=message):
        ds = FolderDataset(root, ["bg", "fg"])
        ds[0]


def test_unknown_dataset_and_missing_root() -> None:
    with pytest.raises(ConfigError, match="allowed: sample, camvid, folder"):
        build_dataset("imagenet", "/tmp", "train")
    with pytest.raises(ConfigError, match=r"data\.root is required"):
        build_dataset("camvid", None, "train")


def _square_pair(h: int = 40, w: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.zeros(3, h, w, dtype=torch.uint8)
    mask = torch.zeros(h, w, dtype=torch.int64)
    image[:, 10:25, 20:35] = 200
    mask[10:25, 20:35] = 1
    return image, mask


@pytest.mark.parametrize("seed", range(5))
def test_geometry_keeps_image_and_mask_aligned(seed: int) -> None:
    import random

    random.seed(seed)
    image, mask = _square_pair()
    t = train_transform((32, 48), scale_range=(0.5, 2.0), flip=True)
    out_img, out_mask = t(image, mask)
    assert out_img.shape == (3, 32, 48) and out_mask.shape == (32, 48)
    square = out_mask == 1
    bright = out_img[0] > 100
    valid = out_mask != 255
    # Image and mask agree on the square everywhere except a 1-pixel resampling border.
    disagree = (square != bright) & valid
    border = (
        torch.nn.functional.max_pool2d(square[None, None].float(), 3, 1, 1)[0, 0].bool()
        & ~(-torch.nn.functional.max_pool2d(-square[None, None].float(), 3, 1, 1)[0, 0]).bool()
    )
    assert not (disagree & ~border).any()
    assert set(out_mask.unique().tolist()) <= {0, 1, 255}  # nearest: no blended labels


def test_crop_pads_mask_with_ignore_and_flip_and_jitter() -> None:
    image, mask = _square_pair(10, 10)
    img, msk = RandomCrop((16, 16))(image, mask)
    assert img.shape == (3, 16, 16) and (msk == 255).sum() == 16 * 16 - 100
    img2, msk2 = RandomHorizontalFlip(p=1.0)(image, mask)
    assert torch.equal(msk2, mask.flip(-1)) and torch.equal(img2, image.flip(-1))
    img3, msk3 = ColorJitter(0.5, 0.5, 0.5)(image, mask)
    assert torch.equal(msk3, mask) and img3.dtype == torch.uint8
    with pytest.raises(ValueError, match="scale range"):
        RandomScale((2.0, 1.0))


def test_cached_dataset_matches_plain() -> None:
    ds = build_dataset("sample", None, "val")
    cached = CachedDataset(ds)
    for i in (0, len(ds) - 1):
        assert torch.equal(cached[i][0], ds[i][0]) and torch.equal(cached[i][1], ds[i][1])

"""The fast data path against the plain one: torchvision.io decoding equals Pillow's, uint8
resizing stays within 1 of the float path, masks resize to exactly the nearest-exact labels, and
the crop draws and pads exactly as pad-then-crop did."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from semseg.constants import IGNORE_INDEX
from semseg.data.io import read_image
from semseg.data.transforms import RandomCrop, resize_pair


def pil_reference(path: Path) -> torch.Tensor:
    """What read_image returned before the torchvision path (Pillow, EXIF upright, RGB)."""
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).contiguous()


def smooth_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(1, 3, h // 4 + 1, w // 4 + 1, generator=g) * 255, size=(h, w), mode="bilinear")
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


@pytest.mark.parametrize(("suffix", "mode"), [(".png", "RGB"), (".png", "L"), (".jpg", "RGB"), (".jpg", "L")])
def test_torchvision_decode_equals_pillow(tmp_path: Path, suffix: str, mode: str) -> None:
    path = tmp_path / f"a{suffix}"
    Image.fromarray(smooth_rgb(37, 53)).convert(mode).save(path)
    ours = read_image(path)
    assert ours.dtype == torch.uint8 and ours.shape == (3, 37, 53) and ours.is_contiguous()
    assert torch.equal(ours, pil_reference(path))


def test_torchvision_decode_applies_exif_orientation(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(smooth_rgb(20, 32)).save(path, exif=exif.tobytes())
    ours = read_image(path)
    assert ours.shape == (3, 32, 20)
    assert torch.equal(ours, pil_reference(path))


def test_camvid_images_decode_as_with_pillow(camvid_root: Path) -> None:
    for path in sorted((camvid_root / "val").glob("*.png"))[:2]:
        assert torch.equal(read_image(path), pil_reference(path))


def float_resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The float path resize_pair used for uint8 images before."""
    img = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)
    return img[0].round().clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("bands", [3, 1, 5])
def test_uint8_resize_within_one_of_float_and_masks_exact(bands: int) -> None:
    rng = random.Random(0)
    for _ in range(12):
        h, w = rng.randint(5, 80), rng.randint(5, 80)
        size = (rng.randint(1, 160), rng.randint(1, 160))
        image = torch.randint(0, 256, (bands, h, w), dtype=torch.uint8)
        mask = torch.randint(0, 300, (h, w))  # ids above 255 too
        img, msk = resize_pair(image, mask, size)
        assert img.shape == (bands, *size) and img.dtype == torch.uint8
        assert int((img.int() - float_resize(image, size).int()).abs().max()) <= 1
        expected = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0].long()
        assert msk.dtype == mask.dtype and torch.equal(msk, expected)


def test_resize_keeps_labels_nearest_on_odd_scales() -> None:
    """No new label values appear (nearest, never blended), for 6-digit sizes too."""
    mask = torch.tensor([[0, 1], [2, IGNORE_INDEX]])
    _, out = resize_pair(torch.zeros(3, 2, 2, dtype=torch.uint8), mask, (7, 9))
    assert set(out.unique().tolist()) == {0, 1, 2, IGNORE_INDEX}


def pad_then_crop(image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """The previous RandomCrop: pad the whole pair (0 / ignore), then crop."""
    ch, cw = size
    h, w = image.shape[-2:]
    ph, pw = max(ch - h, 0), max(cw - w, 0)
    if ph or pw:
        image = F.pad(image, (0, pw, 0, ph), value=0)
        mask = F.pad(mask, (0, pw, 0, ph), value=IGNORE_INDEX)
        h, w = image.shape[-2:]
    top, left = random.randint(0, h - ch), random.randint(0, w - cw)
    return image[:, top : top + ch, left : left + cw], mask[top : top + ch, left : left + cw]


@pytest.mark.parametrize(("h", "w"), [(30, 40), (10, 40), (30, 12), (7, 9), (16, 20)])
def test_crop_equals_pad_then_crop(h: int, w: int) -> None:
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    mask = torch.randint(0, 11, (h, w))
    crop = RandomCrop((16, 20))
    for seed in range(5):
        random.seed(seed)
        ours = crop(image, mask)
        random.seed(seed)
        ref = pad_then_crop(image, mask, (16, 20))
        assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])

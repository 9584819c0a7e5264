"""CamVid and folder datasets, paired transforms, and clear errors for bad trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semseg.data import SAMPLE_ROOT, CachedDataset, build_dataset, collate_pairs
from semseg.data.camvid import CLASSES, CamVid
from semseg.data.folder import FolderDataset
from semseg.data.io import read_image, read_mask
from semseg.data.transforms import ColorJitter, RandomCrop, RandomHorizontalFlip, RandomScale, train_transform
from semseg.errors import ConfigError, DataError, InvalidOptionError


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


def test_unknown_dataset_and_missing_root(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"allowed: sample, camvid, folder, voc, ade20k, cityscapes$"):
        build_dataset("imagenet", "/tmp", "train")
    monkeypatch.chdir(tmp_path)  # no ./data/camvid here
    monkeypatch.delenv("SEMSEG_DATA", raising=False)
    with pytest.raises(ConfigError, match=r"no data\.root given for dataset 'camvid'"):
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


def test_cached_dataset_keeps_uint8_masks_transforms_per_access_and_forwards() -> None:
    ds = build_dataset("sample", None, "val")
    calls = []

    def shift(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(mask.dtype)
        return image, mask + 1

    cached = CachedDataset(ds, shift)
    assert cached.dataset is ds and len(cached) == len(ds) == len(cached.items)
    assert all(m.dtype == torch.uint8 for _, m in cached.items) and not calls  # decoded, not yet transformed
    first, again = cached[0][1], cached[0][1]
    assert (
        calls == [torch.int64, torch.int64] and torch.equal(first, ds.load_pair(0)[1] + 1) and torch.equal(first, again)
    )
    assert not hasattr(cached, "load_instances")  # CamVid has no instances to forward


def test_cached_dataset_forwards_instances_and_keeps_wide_masks(tmp_path: Path) -> None:
    class WithInstances(FolderDataset):
        def load_instances(self, index: int) -> torch.Tensor:
            return torch.full((8, 12), 26000 + index)

    _write_pair(tmp_path, "a", mask_value=1)
    ds = WithInstances(tmp_path, [str(i) for i in range(300)])
    cached = CachedDataset(ds)
    assert torch.equal(cached.load_instances(0), ds.load_instances(0))
    wide = FolderDataset(tmp_path, [str(i) for i in range(300)])
    wide.load_mask = lambda path: torch.full((8, 12), 299)  # type: ignore[method-assign]
    assert CachedDataset(wide).items[0][1].dtype == torch.int64  # 299 does not fit uint8


def test_collate_pairs_stacks() -> None:
    batch = [(torch.zeros(3, 4, 5, dtype=torch.uint8), torch.ones(4, 5, dtype=torch.int64)) for _ in range(2)]
    images, masks = collate_pairs(batch)
    assert images.shape == (2, 3, 4, 5) and masks.shape == (2, 4, 5) and masks.dtype == torch.int64


def _write_list(root: Path, split: str, stems: list[str]) -> None:
    (root / f"{split}.txt").write_text("".join(f"images/{s}.png masks/{s}.png\n" for s in stems))


def test_folder_split_prefers_list_file_then_subfolder_and_refuses_unknown_splits(tmp_path: Path) -> None:
    for stem in ("a", "b", "c"):
        _write_pair(tmp_path, stem)
    _write_pair(tmp_path / "val", "v")
    _write_list(tmp_path, "train", ["b", "c"])
    _write_list(tmp_path, "test", ["a"])
    (tmp_path / "test").mkdir()  # the list file wins over a subfolder of the same name
    classes = ["bg", "fg"]

    def stems(split: str) -> list[str]:
        direct = FolderDataset.from_split(tmp_path, split, classes)
        built = build_dataset("folder", tmp_path, split, classes=classes)
        assert direct.pairs == built.pairs and built.classes == classes
        return [image.stem for image, _ in direct.pairs]

    assert stems("train") == ["b", "c"]  # train.txt
    assert stems("test") == ["a"]  # test.txt, although test/ exists
    assert stems("val") == ["v"]  # val/images, val/masks
    # A root with split structure does not silently serve an unknown split (eval --split TYPO).
    with pytest.raises(DataError, match=r"unknown folder split 'TYPO' in .*; found: test, train, val$"):
        FolderDataset.from_split(tmp_path, "TYPO", classes)
    with pytest.raises(DataError, match=r"unknown folder split 'TYPO'"):
        build_dataset("folder", tmp_path, "TYPO", classes=classes)
    assert FolderDataset.from_split(tmp_path, "val", classes).pairs[0][0] == tmp_path / "val" / "images" / "v.png"
    with pytest.raises(DataError, match="dataset folder not found"):
        FolderDataset.from_split(tmp_path / "missing", "train", classes)


def test_folder_root_without_split_structure_serves_every_split(tmp_path: Path) -> None:
    for stem in ("a", "b"):
        _write_pair(tmp_path, stem)
    (tmp_path / "notes").mkdir()  # a subfolder without images/ or masks/ is not a split
    for split in ("train", "val", "anything"):
        assert [i.stem for i, _ in FolderDataset.from_split(tmp_path, split, ["bg", "fg"]).pairs] == ["a", "b"]


def test_data_package_exports_like_torchvision() -> None:
    import semseg.data as data
    from semseg.data import (
        ADE20K,
        DATASETS,
        CachedDataset,
        CamVid,
        Cityscapes,
        FolderDataset,
        SegmentationDataset,
        VOCSegmentation,
        ade20k,
        build_dataset,
        cache,
        camvid,
        cityscapes,
        collate_pairs,
        folder,
        registry,
        voc,
    )

    assert (ADE20K, CamVid, Cityscapes, VOCSegmentation) == (
        ade20k.ADE20K,
        camvid.CamVid,
        cityscapes.Cityscapes,
        voc.VOCSegmentation,
    )
    assert FolderDataset is folder.FolderDataset and CachedDataset is cache.CachedDataset
    assert collate_pairs is cache.collate_pairs and build_dataset is registry.build_dataset
    assert DATASETS is registry.DATASETS
    assert all(issubclass(c, SegmentationDataset) for c in (ADE20K, CamVid, Cityscapes, VOCSegmentation, FolderDataset))
    assert set(data.__all__) >= {"Cityscapes", "ADE20K", "VOCSegmentation", "CamVid", "FolderDataset"}
    assert all(hasattr(data, name) for name in data.__all__)


def _semseg_imports(path: Path) -> set[str]:
    """Every ``semseg...`` module a source file imports, at any depth (lazy imports included)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return {m for m in found if m == "semseg" or m.startswith("semseg.")}


def test_data_imports_only_errors_constants_and_itself() -> None:
    """data must stay importable without losses, models or engine (no cycles through them)."""
    import semseg.data

    for path in sorted(Path(semseg.data.__file__).parent.glob("*.py")):
        for module in _semseg_imports(path):
            ok = module in ("semseg.errors", "semseg.constants") or module.startswith("semseg.data.")
            assert ok, f"{path.name} imports {module}"


# ---------------------------------------------------------------- image and mask kinds


def _png16(path: Path, values: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    return path


def test_16bit_image_is_scaled_to_8_bits_not_saturated(tmp_path: Path) -> None:
    ramp = (np.arange(6 * 8).reshape(6, 8) * 1365).astype(np.uint16)  # 0 .. 64155
    image = read_image(_png16(tmp_path / "a.png", ramp))
    assert image.shape == (3, 6, 8) and image.dtype == torch.uint8
    assert torch.equal(image[0], torch.from_numpy((ramp >> 8).astype(np.uint8)))
    assert torch.equal(image[0], image[2]) and int(image.max()) == 64155 >> 8


def test_image_kinds_become_8bit_rgb(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = Image.fromarray(rgb)
    for name, im in {
        "gray.png": base.convert("L"),
        "rgba.png": base.convert("RGBA"),
        "la.png": base.convert("LA"),
        "cmyk.jpg": base.convert("CMYK"),
        "palette.png": base.quantize(8),
        "bilevel.png": base.convert("1"),
    }.items():
        im.save(tmp_path / name)
        image = read_image(tmp_path / name)
        assert image.shape == (3, 6, 8) and image.dtype == torch.uint8, name
    assert torch.equal(read_image(tmp_path / "rgba.png"), torch.from_numpy(rgb).permute(2, 0, 1))  # alpha dropped
    gray = read_image(tmp_path / "gray.png")
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[0], torch.from_numpy(np.array(base.convert("L"))))


def test_exif_rotated_image_is_read_upright_and_its_stored_mask_mismatch_says_why(tmp_path: Path) -> None:
    upright = np.zeros((6, 10, 3), np.uint8)
    upright[0, 0] = 255  # top-left marker
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    (tmp_path / "images").mkdir()
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "images" / "a.png", exif=exif)
    image = read_image(tmp_path / "images" / "a.png")
    assert image.shape == (3, 6, 10) and int(image[0, 0, 0]) == 255
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((10, 6), np.uint8)).save(tmp_path / "masks" / "a.png")  # the stored orientation
    with pytest.raises(DataError, match=r"a.png: mask is 6x10 but image a.png is 10x6 \(W x H\); transposed"):
        FolderDataset(tmp_path, ["bg", "fg"])[0]


def test_decompression_bomb_is_refused_from_its_header_and_the_cap_is_configurable(tmp_path: Path) -> None:
    import struct
    import zlib

    from semseg.data import io

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = tmp_path / "bomb.png"
    ihdr = struct.pack(">IIBBBBB", 50_000, 40_000, 8, 0, 0, 0, 0)  # 2e9 pixels declared in 70 bytes
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 9)) + chunk(b"IEND", b"")
    )
    assert io.MAX_IMAGE_PIXELS == io.DEFAULT_MAX_IMAGE_PIXELS == 178_956_970
    message = r"bomb.png is 50000x40000 = 2,000,000,000 pixels, above the cap of 178,956,970"
    with pytest.raises(DataError, match=message):
        read_image(bomb)
    with pytest.raises(DataError, match=message.replace("image", "mask")):
        read_mask(bomb)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(small)
    try:
        io.set_max_image_pixels(47)
        with pytest.raises(DataError, match=r"small.png is 8x6 = 48 pixels, above the cap of 47"):
            read_image(small)
        io.set_max_image_pixels(48)
        assert read_image(small).shape == (3, 6, 8)
        for bad in (0, -1, 2.5, True, "10"):
            with pytest.raises(InvalidOptionError, match="max_image_pixels must be a positive integer or null"):
                io.set_max_image_pixels(bad)  # type: ignore[arg-type]
    finally:
        io.set_max_image_pixels(io.DEFAULT_MAX_IMAGE_PIXELS)


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    import os

    (tmp_path / "empty.png").write_bytes(b"")
    os.symlink("loop.png", tmp_path / "loop.png")
    (tmp_path / "folder.png").mkdir()
    Image.fromarray(np.zeros((64, 64), np.float32)).save(tmp_path / "float.tif")
    cases = {
        "empty.png": r"empty.png: the file is empty \(0 bytes\)",
        "loop.png": r"loop.png: Too many levels of symbolic links",
        "folder.png": r"folder.png: it is a folder",
        "missing.png": r"image not found: .*missing.png",
        "float.tif": r"float.tif: floating-point pixels",
    }
    for name, message in cases.items():
        with pytest.raises(DataError, match=message):
            read_image(tmp_path / name)


def test_mask_kinds(tmp_path: Path) -> None:
    ids = np.arange(6 * 8).reshape(6, 8) * 1000
    assert read_mask(_png16(tmp_path / "wide.png", ids)).max() == 47000  # 16-bit ids are kept
    Image.fromarray(np.eye(6, 8, dtype=bool)).save(tmp_path / "bilevel.png")
    bilevel = read_mask(tmp_path / "bilevel.png")
    assert bilevel.dtype == np.uint8 and set(np.unique(bilevel)) == {0, 1}
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(np.zeros((6, 8), np.uint8)).convert("LA").save(tmp_path / "la.png")
    with pytest.raises(DataError, match=r"rgb.png: mask is RGB \(3 channels of colour\)"):
        read_mask(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"la.png: mask is LA \(2 channels\)"):
        read_mask(tmp_path / "la.png")


def _truncated(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_images_are_errors_not_grey(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"a{suffix}"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    _truncated(path, 0.6)
    with pytest.raises(DataError, match=rf"cannot read image .*a\{suffix}"):
        read_image(path)


def test_two_images_with_one_stem_are_refused_naming_both(tmp_path: Path) -> None:
    _write_pair(tmp_path, "f0")
    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(tmp_path / "images" / "f0.jpg")
    with pytest.raises(DataError, match=r"images .*f0.jpg and .*f0.png share the stem 'f0'"):
        FolderDataset(tmp_path, ["bg", "fg"])


def test_list_file_names_with_spaces_and_non_ascii(tmp_path: Path) -> None:
    for stem in ("my image", "straße"):
        _write_pair(tmp_path, stem)
    (tmp_path / "train.txt").write_text(
        "images/my image.png\tmasks/my image.png\nimages/straße.png masks/straße.png\n", encoding="utf-8"
    )
    (tmp_path / "val.txt").write_text("images/my image.png masks/my image.png\n")  # one split point fits
    for split in ("train", "val"):
        ds = build_dataset("folder", tmp_path, split, classes=["bg", "fg"])
        assert all(i.is_file() and m.is_file() for i, m in ds.pairs)
    assert len(build_dataset("folder", tmp_path, "train", classes=["bg", "fg"])) == 2
    (tmp_path / "bad.txt").write_bytes(b"images/\xff.png masks/a.png\n")
    with pytest.raises(DataError, match=r"bad.txt is not UTF-8 text"):
        FolderDataset(tmp_path, ["bg", "fg"], list_file="bad.txt")
    (tmp_path / "odd.txt").write_text("images/straße.png\n")
    with pytest.raises(DataError, match=r"odd.txt:1: expected 'image mask' \(a tab between names with spaces\)"):
        FolderDataset(tmp_path, ["bg", "fg"], list_file="odd.txt")

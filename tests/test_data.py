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
    with pytest.raises(ConfigError, match=r"allowed: sample, camvid, folder, voc, ade20k, cityscapes$"):
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


def test_folder_split_prefers_list_file_then_subfolder_then_root(tmp_path: Path) -> None:
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
    assert stems("other") == ["a", "b", "c"]  # neither: root itself
    assert FolderDataset.from_split(tmp_path, "val", classes).pairs[0][0] == tmp_path / "val" / "images" / "v.png"
    with pytest.raises(DataError, match="dataset folder not found"):
        FolderDataset.from_split(tmp_path / "missing", "train", classes)


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

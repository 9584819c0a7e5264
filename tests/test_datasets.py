"""VOC 2012 (+ SBD train_aug), ADE20K and Cityscapes loaders on small synthetic trees written in
each official layout; the registry; and errors that name the file for broken trees."""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from semseg.data import ade20k, camvid, cityscapes, download, voc
from semseg.data.check import check_dataset
from semseg.data.folder import FolderDataset
from semseg.data.registry import DATASETS, SAMPLE_ROOT, build_dataset
from semseg.errors import ConfigError, DataError

H, W = 6, 10
# The official Cityscapes id -> trainId pairs of the 19 evaluated classes, typed in again from
# the label table so the loader's table is checked against an independent copy.
CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
    23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip


def _image(path: Path, seed: int, size: tuple[int, int] = (H, W)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def _mask(path: Path, array: np.ndarray, palette: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array.astype(np.uint16 if array.max() > 255 else np.uint8))
    if palette:  # putpalette turns an "L" image into "P" with the same indices
        im.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
        assert im.mode == "P"
    im.save(path)


def _ids(seed: int, high: int, size: tuple[int, int] = (H, W)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, size)


# ---------------------------------------------------------------- VOC


def _voc_tree(tmp_path: Path, ids: dict[str, list[str]]) -> tuple[Path, dict[str, np.ndarray]]:
    base = tmp_path / "VOCdevkit" / "VOC2012"
    masks = {}
    for n, image_id in enumerate(sorted({i for v in ids.values() for i in v})):
        _image(base / "JPEGImages" / f"{image_id}.jpg", n)
        m = _ids(n, 21)
        m[0, :] = 255  # the object-border value
        masks[image_id] = m
        _mask(base / "SegmentationClass" / f"{image_id}.png", m, palette=True)
    lists = base / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    for split, names in ids.items():
        (lists / f"{split}.txt").write_text("".join(f"{i}\n" for i in names))
    return base, masks


@pytest.mark.parametrize("level", ["VOC2012", "VOCdevkit", "parent"])
def test_voc_pairs_and_labels_pixel_by_pixel(tmp_path: Path, level: str) -> None:
    base, masks = _voc_tree(tmp_path, {"train": ["2007_000032", "2007_000039"], "val": ["2008_000002"]})
    root = {"VOC2012": base, "VOCdevkit": base.parent, "parent": tmp_path}[level]
    ds = voc.VOCSegmentation(root, "train")
    assert ds.num_classes == 21 and ds.classes[15] == "person" and ds.palette[1] == (128, 0, 0)
    assert [p[0].name for p in ds.pairs] == ["2007_000032.jpg", "2007_000039.jpg"]
    assert [p[1].parent.name for p in ds.pairs] == ["SegmentationClass"] * 2
    image, mask = ds[1]
    assert image.dtype == torch.uint8 and image.shape == (3, H, W)
    assert mask.dtype == torch.int64 and torch.equal(mask, torch.from_numpy(masks["2007_000039"]).long())
    assert len(voc.VOCSegmentation(root, "val")) == 1


def _fake_loadmat(arrays: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    def loadmat(path: str, squeeze_me: bool, struct_as_record: bool) -> dict:
        assert squeeze_me and not struct_as_record
        return {"GTcls": SimpleNamespace(Segmentation=arrays[Path(path).stem], Boundaries=None)}

    return loadmat


def _sbd_tree(tmp_path: Path, train: list[str], val: list[str]) -> tuple[Path, dict[str, np.ndarray]]:
    sbd = tmp_path / "benchmark_RELEASE" / "dataset"
    (sbd / "cls").mkdir(parents=True)
    (sbd / "train.txt").write_text("\n".join(train) + "\n")
    (sbd / "val.txt").write_text("\n".join(val) + "\n")
    arrays = {i: _ids(100 + n, 21) for n, i in enumerate(train + val)}
    for i in arrays:
        (sbd / "cls" / f"{i}.mat").write_bytes(b"stand-in; read by the fake loadmat")
    return sbd, arrays


def test_voc_train_aug_from_sbd(tmp_path: Path) -> None:
    base, voc_masks = _voc_tree(tmp_path, {"train": ["t1", "b"], "val": ["v1"], "trainval": ["t1", "b", "v1"]})
    _, sbd_masks = _sbd_tree(tmp_path, ["a", "b", "v1"], ["c"])
    for i in ("a", "c"):  # SBD-only images exist in VOC's JPEGImages too
        _image(base / "JPEGImages" / f"{i}.jpg", 7)
    list_file = voc.convert_sbd(tmp_path / "benchmark_RELEASE", tmp_path, loadmat=_fake_loadmat(sbd_masks))
    # (SBD train + val + VOC train) - VOC val, sorted
    assert list_file.read_text().split() == ["a", "b", "c", "t1"]
    ds = voc.VOCSegmentation(tmp_path, "train_aug")
    got = {p[0].stem: ds[i][1].numpy() for i, p in enumerate(ds.pairs)}
    np.testing.assert_array_equal(got["a"], sbd_masks["a"])
    np.testing.assert_array_equal(got["c"], sbd_masks["c"])
    np.testing.assert_array_equal(got["b"], voc_masks["b"])  # official VOC mask wins over SBD's
    np.testing.assert_array_equal(got["t1"], voc_masks["t1"])
    assert Image.open(ds.pairs[0][1]).mode == "P"


def test_sbd_mat_through_scipy(tmp_path: Path) -> None:
    scipy_io = pytest.importorskip("scipy.io")
    seg = _ids(3, 21).astype(np.uint8)
    scipy_io.savemat(tmp_path / "x.mat", {"GTcls": {"Segmentation": seg, "CategoriesPresent": np.unique(seg)}})
    np.testing.assert_array_equal(voc.sbd_mask(tmp_path / "x.mat", scipy_io.loadmat), seg)


def test_sbd_without_scipy_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _voc_tree(tmp_path, {"train": ["t1"], "val": ["v1"]})
    _sbd_tree(tmp_path, ["a"], [])
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # makes `from scipy.io import ...` fail
    with pytest.raises(DataError, match=r"needs scipy, which semseg does not install: pip install scipy"):
        voc.convert_sbd(tmp_path, tmp_path)


def test_voc_train_aug_needs_conversion_first(tmp_path: Path) -> None:
    base, _ = _voc_tree(tmp_path, {"train": ["x"], "val": ["y"]})
    with pytest.raises(DataError, match=r"train_aug.txt not found: create train_aug once"):
        voc.VOCSegmentation(base, "train_aug")


def test_sbd_bad_mat_names_file(tmp_path: Path) -> None:
    (tmp_path / "bad.mat").write_bytes(b"x")
    with pytest.raises(DataError, match=r"bad.mat: no GTcls.Segmentation"):
        voc.sbd_mask(tmp_path / "bad.mat", lambda *a, **k: {"other": 1})


# ---------------------------------------------------------------- ADE20K


def _ade_tree(tmp_path: Path, n: int = 2) -> tuple[Path, list[np.ndarray]]:
    base = tmp_path / "ADEChallengeData2016"
    raws = []
    for split, folder in (("train", "training"), ("val", "validation")):
        for k in range(1, n + 1):
            stem = f"ADE_{split}_{k:08d}"
            _image(base / "images" / folder / f"{stem}.jpg", k)
            raw = _ids(k, 151)
            raw[0, :3] = (0, 1, 150)
            _mask(base / "annotations" / folder / f"{stem}.png", raw)
            if split == "train":
                raws.append(raw)
    return base, raws


@pytest.mark.parametrize("parent", [False, True])
def test_ade20k_shift_pixel_by_pixel(tmp_path: Path, parent: bool) -> None:
    base, raws = _ade_tree(tmp_path)
    ds = ade20k.ADE20K(tmp_path if parent else base, "train")
    assert ds.num_classes == 150 and len(set(ds.classes)) == 150 and ds.classes[12] == "person"
    assert [p[0].name for p in ds.pairs] == ["ADE_train_00000001.jpg", "ADE_train_00000002.jpg"]
    for i, raw in enumerate(raws):
        mask = ds[i][1].numpy()
        np.testing.assert_array_equal(mask, np.where(raw == 0, 255, raw - 1))
        assert mask[0, :3].tolist() == [255, 0, 149]
    assert len(ade20k.ADE20K(base, "val")) == 2


# ---------------------------------------------------------------- Cityscapes


def _city_tree(tmp_path: Path) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    base = tmp_path / "cityscapes"
    gts = {}
    for split, city, frame in (("train", "aachen", 19), ("train", "bochum", 4), ("val", "lindau", 7)):
        prefix = f"{city}_000000_{frame:06d}"
        _image(base / "leftImg8bit" / split / city / f"{prefix}_leftImg8bit.png", frame)
        ids = _ids(frame, 34)
        ids[0, 0] = 33
        inst = ids.copy()
        inst[1, :4] = 26000  # car #0
        inst[2, :3] = 26001  # car #1
        inst[3, :2] = 24000  # person #0
        inst[4, :2] = 26  # a crowd of cars: the bare label id
        ids = np.where(inst >= 1000, inst // 1000, inst)
        gt = base / "gtFine" / split / city
        _mask(gt / f"{prefix}_gtFine_labelIds.png", ids)
        _mask(gt / f"{prefix}_gtFine_instanceIds.png", inst.astype(np.uint16))
        gts[prefix] = (ids, inst)
    return base, gts


@pytest.mark.parametrize("parent", [False, True])
def test_cityscapes_train_ids_and_instances_pixel_by_pixel(tmp_path: Path, parent: bool) -> None:
    base, gts = _city_tree(tmp_path)
    ds = cityscapes.Cityscapes(tmp_path if parent else base, "train")
    assert ds.num_classes == 19 and ds.classes[13] == "car" and ds.palette[0] == (128, 64, 128)
    assert [p[0].name for p in ds.pairs] == [
        "aachen_000000_000019_leftImg8bit.png",
        "bochum_000000_000004_leftImg8bit.png",
    ]
    assert Image.open(ds.instance_path(0)).mode.startswith("I")  # 16-bit PNG
    table = np.full(256, 255)
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        table[label_id] = train_id
    for i, (image_path, _) in enumerate(ds.pairs):
        ids, inst = gts[image_path.name.replace("_leftImg8bit.png", "")]
        image, mask = ds[i]
        assert image.shape == (3, H, W)
        np.testing.assert_array_equal(mask.numpy(), table[ids])
        instances = ds.load_instances(i).numpy()
        np.testing.assert_array_equal(instances, np.where(inst > 1000, inst, 0))
        assert sorted(np.unique(instances).tolist()) == [0, 24000, 26000, 26001]
    assert len(cityscapes.Cityscapes(base, "trainval")) == 3


# ---------------------------------------------------------------- broken trees


def test_voc_missing_mask_names_file(tmp_path: Path) -> None:
    base, _ = _voc_tree(tmp_path, {"train": ["a", "b"], "val": ["c"]})
    (base / "SegmentationClass" / "b.png").unlink()
    with pytest.raises(DataError, match=r"image b has no mask .*SegmentationClass/b.png"):
        voc.VOCSegmentation(base, "train")


def test_voc_rgb_mask_and_stray_label_name_file(tmp_path: Path) -> None:
    base, _ = _voc_tree(tmp_path, {"train": ["a", "b"], "val": ["c"]})
    Image.new("RGB", (W, H)).save(base / "SegmentationClass" / "a.png")
    _mask(base / "SegmentationClass" / "b.png", np.full((H, W), 30), palette=True)
    ds = voc.VOCSegmentation(base, "train")
    with pytest.raises(DataError, match=r"a.png: mask is RGB"):
        ds[0]
    with pytest.raises(DataError, match=r"b.png: label values \[30\] outside the 21 classes"):
        ds[1]


def test_ade20k_palette_mask_size_mismatch_and_missing(tmp_path: Path) -> None:
    base, _ = _ade_tree(tmp_path)
    folder = base / "annotations" / "training"
    _mask(folder / "ADE_train_00000001.png", _ids(1, 151), palette=True)
    _mask(folder / "ADE_train_00000002.png", _ids(2, 151, (H, W + 1)))
    ds = ade20k.ADE20K(base, "train")
    with pytest.raises(DataError, match=r"ADE_train_00000001.png: palette \(colour\) mask where label ids"):
        ds[0]
    with pytest.raises(
        DataError, match=r"ADE_train_00000002.png: mask is 11x6 but image ADE_train_00000002.jpg is 10x6"
    ):
        ds[1]
    (folder / "ADE_train_00000002.png").unlink()
    with pytest.raises(DataError, match=r"ADE_train_00000002.jpg has no annotation .*ADE_train_00000002.png"):
        ade20k.ADE20K(base, "train")


def test_cityscapes_wrong_suffix_names_file(tmp_path: Path) -> None:
    base, _ = _city_tree(tmp_path)
    gt = base / "gtFine" / "train" / "aachen"
    (gt / "aachen_000000_000019_gtFine_labelIds.png").rename(gt / "aachen_000000_000019_gtFine_labelTrainIds.png")
    with pytest.raises(
        DataError, match=r"aachen_000000_000019_gtFine_labelIds.png; found .*labelTrainIds.png \(wrong suffix"
    ):
        cityscapes.Cityscapes(base, "train")
    img = base / "leftImg8bit" / "val" / "lindau"
    (img / "lindau_000000_000007_leftImg8bit.png").rename(img / "lindau_000000_000007.png")
    with pytest.raises(
        DataError, match=r"lindau_000000_000007.png: not a Cityscapes image name \(expected \*_leftImg8bit.png\)"
    ):
        cityscapes.Cityscapes(base, "val")


def test_cityscapes_colour_mask_and_missing_root(tmp_path: Path) -> None:
    base, _ = _city_tree(tmp_path)
    mask = base / "gtFine" / "val" / "lindau" / "lindau_000000_000007_gtFine_labelIds.png"
    _mask(mask, _ids(0, 34), palette=True)
    with pytest.raises(DataError, match=r"lindau_000000_000007_gtFine_labelIds.png: palette \(colour\) mask"):
        cityscapes.Cityscapes(base, "val")[0]
    with pytest.raises(DataError, match=r"Cityscapes layout not found under .*none of .*leftImg8bit"):
        cityscapes.Cityscapes(base / "gtFine", "val")
    with pytest.raises(DataError, match=r"unknown Cityscapes split 'validation'; allowed: train, val, test, trainval"):
        cityscapes.Cityscapes(base, "validation")


# ---------------------------------------------------------------- registry


def test_registry_builds_every_dataset(tmp_path: Path) -> None:
    _voc_tree(tmp_path / "v", {"train": ["a"], "val": ["b"]})
    _ade_tree(tmp_path / "a")
    _city_tree(tmp_path / "c")
    assert set(DATASETS) == {"sample", "voc", "ade20k", "cityscapes", "camvid", "folder"}
    assert isinstance(build_dataset("voc", tmp_path / "v", "val"), voc.VOCSegmentation)
    assert isinstance(build_dataset("ade20k", tmp_path / "a", "val"), ade20k.ADE20K)
    assert isinstance(build_dataset("cityscapes", tmp_path / "c", "val"), cityscapes.Cityscapes)
    assert len(build_dataset("camvid", SAMPLE_ROOT, "train")) == 32
    _image(tmp_path / "f" / "images" / "x.png", 0)
    _mask(tmp_path / "f" / "masks" / "x.png", np.ones((H, W)))
    assert build_dataset("folder", tmp_path / "f", "train", classes=["bg", "fg"]).classes == ["bg", "fg"]
    with pytest.raises(
        ConfigError, match=r"unknown dataset 'coco'; allowed: sample, camvid, folder, voc, ade20k, cityscapes$"
    ):
        build_dataset("coco", tmp_path, "train")
    with pytest.raises(DataError, match=r"unknown ade20k split 'test'; allowed: train, val"):
        build_dataset("ade20k", tmp_path / "a", "test")


def _trees(tmp_path: Path) -> dict[str, Path | None]:
    """A root per registry name, each a synthetic tree in that dataset's layout."""
    _voc_tree(tmp_path / "v", {"train": ["a"], "val": ["b"]})
    _ade_tree(tmp_path / "a")
    _city_tree(tmp_path / "c")
    _image(tmp_path / "f" / "images" / "x.png", 0)
    _mask(tmp_path / "f" / "masks" / "x.png", np.ones((H, W)))
    roots = {"sample": None, "camvid": SAMPLE_ROOT, "folder": tmp_path / "f"}
    return roots | {"voc": tmp_path / "v", "ade20k": tmp_path / "a", "cityscapes": tmp_path / "c"}


@pytest.mark.parametrize(
    ("name", "cls", "num_classes", "train_len"),
    [
        ("sample", camvid.CamVid, 11, 32),
        ("camvid", camvid.CamVid, 11, 32),
        ("folder", FolderDataset, 2, 1),
        ("voc", voc.VOCSegmentation, 21, 1),
        ("ade20k", ade20k.ADE20K, 150, 2),
        ("cityscapes", cityscapes.Cityscapes, 19, 2),
    ],
)
def test_build_dataset_every_name(tmp_path: Path, name: str, cls: type, num_classes: int, train_len: int) -> None:
    def flip_image(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return image.flip(-1), mask

    # classes are passed for every name: only folder uses them, the others keep their own.
    ds = build_dataset(name, _trees(tmp_path)[name], "train", transform=flip_image, classes=["bg", "fg"])
    assert type(ds) is cls and ds.num_classes == num_classes and len(ds) == train_len
    spec_classes = DATASETS[name].classes
    assert ds.classes == (["bg", "fg"] if spec_classes is None else list(spec_classes))
    image, mask = ds[0]
    raw_image, raw_mask = ds.load_pair(0)
    assert torch.equal(image, raw_image.flip(-1)) and torch.equal(mask, raw_mask)
    assert image.dtype == torch.uint8 and image.shape[0] == 3 and mask.dtype == torch.int64
    assert mask.shape == image.shape[1:]


@pytest.mark.parametrize("name", ["camvid", "voc", "ade20k", "cityscapes", "folder"])
def test_build_dataset_without_a_root_looks_in_data(name: str, tmp_path: Path, monkeypatch) -> None:
    """No root: ``./data/<name>``, or ``$SEMSEG_DATA/<name>``; where neither exists, the error
    says how to get the data."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEMSEG_DATA", raising=False)
    with pytest.raises(ConfigError, match=rf"no data\.root given for dataset '{name}' and data/{name} does not exist"):
        build_dataset(name, None, "train", classes=["bg", "fg"])
    if name == "camvid":
        with pytest.raises(ConfigError, match=r"get it with `semseg data download camvid data`"):
            build_dataset(name, None, "train")
        monkeypatch.setenv("SEMSEG_DATA", str(tmp_path / "elsewhere"))
        with pytest.raises(ConfigError, match=r"elsewhere/camvid does not exist"):
            build_dataset(name, None, "train")
        shutil.copytree(SAMPLE_ROOT, tmp_path / "elsewhere" / "camvid")
        assert len(build_dataset(name, None, "train")) == 32


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("sample", "train, val, test, trainval"),
        ("camvid", "train, val, test, trainval"),
        ("voc", "train, val, trainval, train_aug"),
        ("ade20k", "train, val"),
        ("cityscapes", "train, val, test, trainval"),
    ],
)
def test_build_dataset_unknown_split_lists_the_allowed(tmp_path: Path, name: str, allowed: str) -> None:
    root = _trees(tmp_path)[name]
    with pytest.raises(DataError, match=rf"^unknown {name} split 'validation'; allowed: {allowed}$"):
        build_dataset(name, root, "validation")


def test_build_folder_needs_classes_and_takes_any_split(tmp_path: Path) -> None:
    root = _trees(tmp_path)["folder"]
    for classes in (None, []):
        with pytest.raises(ConfigError, match=r"^dataset 'folder' needs data\.classes \(a list of class names\)$"):
            build_dataset("folder", root, "train", classes=classes)
    assert len(build_dataset("folder", root, "validation", classes=("bg", "fg"))) == 1


# ---------------------------------------------------------------- data check


def test_check_counts_match_masks_on_a_clean_tree(tmp_path: Path) -> None:
    _, raws = _ade_tree(tmp_path)
    report = check_dataset("ade20k", tmp_path, ["train"])
    assert report.ok and report.splits[0].pairs == 2
    ids = np.concatenate([np.where(r == 0, 255, r - 1).ravel() for r in raws])
    expected = np.bincount(ids, minlength=256)
    assert report.splits[0].class_pixels == expected[:150].tolist()
    assert report.splits[0].ignored_pixels == int(expected[255])
    assert report.splits[0].class_images[0] == sum(int((r == 1).any()) for r in raws)
    text = str(report)
    assert "[train] 2 pairs, 0 problem(s)" in text and "mf weight" in text and text.endswith("OK")


def test_check_lists_every_problem_with_its_file(tmp_path: Path) -> None:
    base, _ = _city_tree(tmp_path)
    gt = base / "gtFine" / "train"
    (gt / "aachen" / "aachen_000000_000019_gtFine_labelIds.png").unlink()
    _mask(gt / "bochum" / "bochum_000000_000004_gtFine_labelIds.png", np.full((H, W + 2), 40))
    report = check_dataset("cityscapes", base, ["train", "val"])
    train, val = report.splits
    assert len(train.problems) == 2 and not val.problems and not report.ok
    assert "aachen_000000_000019_gtFine_labelIds.png" in train.problems[0]
    assert "bochum_000000_000004_gtFine_labelIds.png: mask is 12x6 but image" in train.problems[1]
    _mask(gt / "bochum" / "bochum_000000_000004_gtFine_labelIds.png", np.full((H, W), 40))
    problems = check_dataset("cityscapes", base, ["train"]).splits[0].problems
    assert re.search(r"bochum_000000_000004_gtFine_labelIds.png: label values \[40\] outside the 19", problems[1])
    assert "2 problem(s) found" in str(report)


def test_check_reports_constructor_errors_for_camvid(tmp_path: Path) -> None:
    report = check_dataset("camvid", tmp_path / "nowhere")
    assert [s.split for s in report.splits] == ["train", "val"]
    assert "CamVid root not found" in report.splits[0].problems[0]
    sample = check_dataset("camvid", SAMPLE_ROOT, ["val"], max_images=3)
    assert sample.ok and sum(sample.splits[0].class_pixels) + sample.splits[0].ignored_pixels == 3 * 180 * 240


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_check_decodes_every_file_so_truncated_images_and_masks_are_problems(tmp_path: Path) -> None:
    root = tmp_path / "f"
    for stem, suffix in (("a", ".png"), ("b", ".jpg"), ("c", ".png")):
        _image(root / "images" / f"{stem}{suffix}", 0, (32, 32))
        _mask(root / "masks" / f"{stem}.png", _ids(1, 2, (32, 32)))
    _truncate(root / "images" / "a.png", 0.5)
    _truncate(root / "images" / "b.jpg", 0.6)
    _truncate(root / "masks" / "c.png", 0.5)
    problems = check_dataset("folder", root, ["train"], classes=["bg", "fg"]).splits[0].problems
    assert len(problems) == 3, problems
    assert re.search(r"cannot read image .*a\.png", problems[0])
    assert re.search(r"cannot read image .*b\.jpg", problems[1])
    assert re.search(r"cannot read mask .*c\.png", problems[2])


def test_check_lists_every_problem_of_folder_and_camvid_trees(tmp_path: Path) -> None:
    root = tmp_path / "f"
    for stem in ("a", "b", "c", "d"):
        _image(root / "images" / f"{stem}.png", 0)
        _mask(root / "masks" / f"{stem}.png", _ids(1, 2))
    (root / "masks" / "a.png").unlink()
    (root / "masks" / "b.png").unlink()
    _image(root / "images" / "c.jpg", 1)  # c.png and c.jpg: one stem
    _mask(root / "masks" / "d.png", np.full((H, W), 9))
    problems = check_dataset("folder", root, ["train"], classes=["bg", "fg"]).splits[0].problems
    assert len(problems) == 4, problems
    assert "share the stem 'c'" in problems[0] and "a.png has no mask" in problems[1]
    assert "b.png has no mask" in problems[2] and "d.png: label values [9] outside the 2 classes" in problems[3]
    with pytest.raises(DataError, match=r"share the stem 'c'.* \(and 2 more; run `semseg data check`"):
        build_dataset("folder", root, "train", classes=["bg", "fg"])
    with pytest.raises(ConfigError, match=r"needs its class names \(--classes"):
        check_dataset("folder", root, ["train"])

    cam = tmp_path / "camvid"
    for part in ("train", "val"):
        for stem in ("x", "y"):
            _image(cam / part / f"{stem}.png", 0)
            _mask(cam / f"{part}annot" / f"{stem}.png", _ids(0, 12))
        (cam / f"{part}annot" / "x.png").unlink()
    (cam / "val.txt").write_text("val/y.png valannot/y.png\nval/z.png valannot/z.png\n")
    report = check_dataset("camvid", cam, ["train", "val", "trainval"])
    assert [len(s.problems) for s in report.splits] == [1, 1, 2]
    assert "x.png has no mask" in report.splits[0].problems[0]
    assert "val.txt:2: image not found" in report.splits[1].problems[0]


# ---------------------------------------------------------------- downloads (file:// URLs, no network)


def test_download_verifies_checksum(tmp_path: Path) -> None:
    src = tmp_path / "archive.bin"
    src.write_bytes(b"semseg" * 1000)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    got = download.download_file(src.as_uri(), tmp_path / "dl" / "a.bin", f"md5:{md5}")
    assert got.read_bytes() == src.read_bytes()
    with pytest.raises(DataError, match=r"b.bin.part: sha256 is [0-9a-f]{64}, expected 00"):
        download.download_file(src.as_uri(), tmp_path / "dl" / "b.bin", "sha256:" + "00" * 32)
    assert not list((tmp_path / "dl").glob("b.bin*"))  # nothing half-written is left behind
    with pytest.raises(DataError, match=r"cannot be downloaded without an account"):
        download.download_dataset("cityscapes", tmp_path)


def test_extract_refuses_paths_outside(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("ADEChallengeData2016/x.txt", "x")
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../escape.txt", "x")
    assert (download.extract_archive(good, tmp_path / "out") / "ADEChallengeData2016" / "x.txt").is_file()
    with pytest.raises(DataError, match=r"bad.zip: member '../escape.txt' would be written outside"):
        download.extract_archive(bad, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()

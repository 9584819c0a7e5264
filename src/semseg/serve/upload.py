"""Checking an uploaded file before it costs anything: its size on disk first (before a byte is
decoded), then the width x height its header declares, then the full decode.

A web page accepts files from anyone who can reach it, so the order matters: a 2 GB upload is
refused from ``stat`` alone, and a small file that declares a 100,000 x 100,000 image (a
decompression bomb) is refused from its header, before Pillow allocates the pixels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from semseg.data.io import read_image
from semseg.errors import DataError

MB = 1024 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """The largest upload the page takes.

    Attributes:
        max_bytes: file size cap, checked on the file before it is opened (default 20 MiB).
        max_pixels: ``width * height`` cap, checked on the header before decoding (default
            4096 x 4096, about 16.8 million pixels).
    """

    max_bytes: int = 20 * MB
    max_pixels: int = 4096 * 4096

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise DataError(f"upload limits must be positive, got {self.max_bytes} bytes and {self.max_pixels} pixels")


def _megabytes(n: int) -> str:
    return f"{n / MB:.1f} MB"


def read_upload(path: str | Path, limits: UploadLimits, name: str | None = None) -> torch.Tensor:
    """The uploaded image as ``uint8 (3, H, W)`` RGB, or a :class:`~semseg.errors.DataError`
    whose message is meant for the page (it names ``name``, the file's name as the person chose
    it, not the server's temporary path).

    Checks, in order: the file exists and is not empty; its size is at most ``limits.max_bytes``
    (from ``stat``: nothing is read); Pillow recognises it as an image (header only); its
    ``width * height`` is at most ``limits.max_pixels``; it decodes completely
    (:func:`semseg.data.io.read_image`: EXIF orientation, palette, 16-bit and CMYK handled).
    """
    path = Path(path)
    shown = name or path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{shown}: the upload could not be read ({exc.strerror or exc})") from None
    if size == 0:
        raise DataError(f"{shown} is empty (0 bytes): upload an image file (PNG, JPEG, BMP, TIFF, WebP)")
    if size > limits.max_bytes:
        raise DataError(
            f"{shown} is {_megabytes(size)}, over this page's upload limit of {_megabytes(limits.max_bytes)}"
        )
    try:
        # Pillow's own decompression-bomb check would raise (or warn) from the header alone;
        # the cap below is the one that applies here, and it is smaller.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        raise DataError(f"{shown} declares more pixels than this page accepts ({limits.max_pixels:,})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise DataError(f"{shown} is not an image: upload a PNG, JPEG, BMP, TIFF or WebP file") from None
    if width * height > limits.max_pixels:
        raise DataError(
            f"{shown} is {width} x {height} = {width * height:,} pixels, over this page's limit of {limits.max_pixels:,}"
        )
    try:
        return read_image(path)
    except DataError:
        # read_image's message names the temporary path; the person knows the file by its name.
        raise DataError(f"{shown} could not be decoded: the image file is damaged or truncated") from None

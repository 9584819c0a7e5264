"""Reading images and label masks, with errors that name the file.

Every file is opened through one helper that reads the header first and refuses an image whose
width x height exceeds :data:`MAX_IMAGE_PIXELS` *before* decoding it, so a decompression bomb (a
small file declaring a huge image) costs nothing. Any failure to read or decode the file (missing,
empty, truncated, not an image, a symbolic-link loop, too large) is a
:class:`~semseg.errors.DataError` naming the file. Decoding is complete: a truncated PNG or JPEG is
an error here, never a half-grey image.

Images (:func:`read_image`), whatever their kind, become 8-bit RGB:

- 8-bit grayscale, palette, RGBA/LA (alpha dropped, colours kept), CMYK and YCbCr are converted to
  RGB by Pillow; bilevel images to black and white.
- 16-bit images are scaled to 8 bits by their high byte (``v >> 8``, so 65535 -> 255 and the
  full range keeps its contrast); 48/64-bit RGB(A) PNGs are reduced the same way by Pillow. 32-bit
  integer images (mode ``I``) are read as 16-bit (clipped to 0..65535 first). Floating-point
  images (mode ``F``) have no defined range and are refused.
- A JPEG (or TIFF/WebP) with an EXIF orientation tag is turned upright as every viewer shows it
  (``ImageOps.exif_transpose``). Masks are never rotated: they are read as stored. A mask drawn on
  the upright view therefore matches; a mask stored in the camera's raw orientation does not, and
  the dataset reports the size mismatch (with a hint when the sizes are swapped).

Multi-band images are ``.npy`` files (numpy only, no extra dependency): an array ``(H, W, B)``
(or ``(H, W)``, one band) of ``uint8``, or ``uint16`` scaled to 8 bits as above (``v >> 8``).
:func:`read_image` returns them as ``uint8 (B, H, W)``; any other dtype or shape, a pickled
object array or a truncated file is a :class:`~semseg.errors.DataError`. The pixel cap applies.

Masks (:func:`read_mask`) must hold label ids in one channel: 8-bit (``L``), palette indices
(``P``, as VOC stores them), 16-bit (ids up to 65535, for datasets with many classes), or bilevel
(0/1). Colour (RGB/RGBA/CMYK...), two-channel, float and negative masks are refused.
"""

from __future__ import annotations

import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from semseg.constants import IGNORE_INDEX
from semseg.errors import DataError, InvalidOptionError

DEFAULT_MAX_IMAGE_PIXELS = 178_956_970
"""The default pixel cap: twice Pillow's warning threshold, i.e. where Pillow itself stops with a
``DecompressionBombError`` (about a 13,377 x 13,377 image; 512 MiB as 8-bit RGB)."""

MAX_IMAGE_PIXELS: int | None = DEFAULT_MAX_IMAGE_PIXELS
"""Images (and masks) with more pixels than this are refused from their header, before decoding.
``None`` removes the cap. Change it with :func:`set_max_image_pixels` (the config's
``data.max_image_pixels``)."""

EXIF_ORIENTATION = 0x0112
_OPEN_LOCK = threading.Lock()
_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_COLOUR_MASK_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV")


def set_max_image_pixels(n: int | None) -> None:
    """Set :data:`MAX_IMAGE_PIXELS`, the largest ``width * height`` read; ``None``: no cap.

    The cap applies to every image and mask this module reads from then on, in this process (and
    in DataLoader workers forked after the call).

    Raises:
        InvalidOptionError: ``n`` is not a positive integer or ``None``.
    """
    global MAX_IMAGE_PIXELS
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InvalidOptionError(f"max_image_pixels must be a positive integer or null, got {n!r}")
    MAX_IMAGE_PIXELS = n


@contextmanager
def open_checked(path: str | Path, what: str = "image") -> Iterator[Image.Image]:
    """Open ``path`` with Pillow (header only) after checking it exists, is not empty and is not
    above :data:`MAX_IMAGE_PIXELS`; any read error inside the block becomes a :class:`DataError`.

    Pillow's own decompression-bomb check is switched off while the header is read (under a
    lock, then restored): this module's cap replaces it, so raising the cap is enough to read a
    large image, and the error names the file, its size and the cap.

    Args:
        path: the file.
        what: ``"image"`` or ``"mask"``, for the messages.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise DataError(f"{what} not found: {path}") from exc
    except OSError as exc:  # a symbolic-link loop, a permission problem, an over-long name
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a NUL byte in the name
        raise DataError(f"cannot read {what} {path!r}: {exc}") from exc
    if path.is_dir():
        raise DataError(f"cannot read {what} {path}: it is a folder")
    if size == 0:
        raise DataError(f"cannot read {what} {path}: the file is empty (0 bytes)")
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            pil_cap, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                im = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = pil_cap
    except UnidentifiedImageError as exc:
        raise DataError(f"cannot read {what} {path}: not an image file Pillow can identify") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read {what} {path}: {exc}") from exc
    with im:
        width, height = im.size
        if MAX_IMAGE_PIXELS is not None and width * height > MAX_IMAGE_PIXELS:
            raise DataError(
                f"{what} {path} is {width}x{height} = {width * height:,} pixels, above the cap of "
                f"{MAX_IMAGE_PIXELS:,} (data.max_image_pixels; a decompression bomb or an image too large to decode)"
            )
        try:
            yield im
        except DataError:
            raise
        except MemoryError as exc:
            raise DataError(f"cannot read {what} {path}: not enough memory to decode {width}x{height} pixels") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise DataError(f"cannot read {what} {path}: {exc}") from exc


NPY_SUFFIX = ".npy"
"""The suffix of multi-band images: numpy arrays ``(H, W, B)`` of uint8 or uint16."""

BINARY_IGNORE_VALUE = 128
"""In a binary mask (``data.binary: true``), the value of pixels left out of loss and metrics.
0 is background, 1 and 255 are foreground; any other value is an error."""


def binary_labels(raw: np.ndarray, path: str | Path) -> np.ndarray:
    """A binary mask's raw values as labels ``int64 (H, W)``: 0 -> 0 (background), 1 and 255 -> 1
    (foreground), :data:`BINARY_IGNORE_VALUE` (128) -> ``IGNORE_INDEX`` (255).

    Raises:
        DataError: any other value (e.g. a multi-class mask given to a binary model), naming the
            file and the values.
    """
    values = np.unique(raw)
    bad = [int(v) for v in values if int(v) not in (0, 1, 255, BINARY_IGNORE_VALUE)]
    if bad:
        raise DataError(
            f"{path}: binary mask holds values {bad[:5]}; expected 0 (background), 1 or 255 (foreground), "
            f"{BINARY_IGNORE_VALUE} (ignored) -- a multi-class mask needs data.binary: false and num_classes >= 2"
        )
    out = np.zeros(raw.shape, dtype=np.int64)
    out[(raw == 1) | (raw == 255)] = 1
    out[raw == BINARY_IGNORE_VALUE] = IGNORE_INDEX
    return out


def read_npy_image(path: str | Path) -> torch.Tensor:
    """A multi-band ``.npy`` image ``(H, W, B)`` or ``(H, W)`` of uint8/uint16 as ``uint8 (B, H, W)``
    (uint16 scaled by ``v >> 8``). The header is checked (shape, dtype, :data:`MAX_IMAGE_PIXELS`)
    before the pixels are read.

    Raises:
        DataError: missing, empty or truncated file, not a numpy array, another dtype or shape,
            or too many pixels; the message names the file.
    """
    path = Path(path)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError as exc:
        raise DataError(f"image not found: {path}") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read image {path}: not a numpy .npy array ({exc})") from exc
    if not isinstance(arr, np.ndarray) or arr.ndim not in (2, 3):
        raise DataError(
            f"cannot read image {path}: expected an array (H, W, bands), got shape {getattr(arr, 'shape', '?')}"
        )
    if arr.dtype not in (np.uint8, np.uint16):
        raise DataError(f"cannot read image {path}: {arr.dtype} pixels; expected uint8 or uint16")
    height, width = arr.shape[:2]
    if MAX_IMAGE_PIXELS is not None and height * width > MAX_IMAGE_PIXELS:
        raise DataError(
            f"image {path} is {width}x{height} = {width * height:,} pixels, above the cap of "
            f"{MAX_IMAGE_PIXELS:,} (data.max_image_pixels)"
        )
    try:
        data = np.array(arr)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from exc
    if data.ndim == 2:
        data = data[:, :, None]
    if data.dtype == np.uint16:
        data = (data >> 8).astype(np.uint8)
    if data.shape[2] < 1:
        raise DataError(f"cannot read image {path}: no bands (shape {data.shape})")
    return torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))


def read_image(path: str | Path, contiguous: bool = True) -> torch.Tensor:
    """An image file as ``uint8`` RGB tensor ``(3, H, W)``, upright as its EXIF orientation says;
    a ``.npy`` file as its ``uint8 (B, H, W)`` bands (:func:`read_npy_image`).

    With ``contiguous=False`` an 8-bit PNG may come back as a ``(3, H, W)`` view of its decoded
    ``(H, W, 3)`` pixels (channels-last strides, the layout the uint8 resize of the training
    augmentation takes): one copy fewer per sample.

    Grayscale, palette, RGBA, CMYK and 16-bit images are converted as the module docstring
    describes (16-bit: ``v >> 8``).

    Raises:
        DataError: missing, empty, truncated or unreadable file, a floating-point image, or more
            pixels than :data:`MAX_IMAGE_PIXELS`; the message names the file.
    """
    if Path(path).suffix.lower() == NPY_SUFFIX:
        return read_npy_image(path)
    fast = _read_png_fast(path, _RGB_COLOUR_TYPES)
    if fast is not None:
        arr = fast if fast.ndim == 3 else np.repeat(fast[:, :, None], 3, axis=2)
        image = torch.from_numpy(arr).permute(2, 0, 1)
        return image.contiguous() if contiguous else image
    with open_checked(path, "image") as im:
        if im.format in _FAST_FORMATS and im.mode in ("RGB", "L"):
            decoded = _decode_fast(path)
            if decoded is not None:
                return decoded
        im.load()
        if im.getexif().get(EXIF_ORIENTATION, 1) != 1:
            im = ImageOps.exif_transpose(im)
        if im.mode in _HIGH_BIT_MODES:
            wide = np.asarray(im).astype(np.int64)
            gray = (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)
            arr = np.repeat(gray[:, :, None], 3, axis=2)
        elif im.mode == "F":
            raise DataError(f"cannot read image {path}: floating-point pixels (mode F); save it as 8- or 16-bit")
        elif im.mode in ("P", "PA"):  # through RGBA, so a transparent palette entry raises no warning
            arr = np.asarray(im.convert("RGBA").convert("RGB"))
        else:
            arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(np.require(arr, requirements=["C", "W"])).permute(2, 0, 1).contiguous()


_FAST_FORMATS = ("PNG", "JPEG")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RGB_COLOUR_TYPES = (0, 2)  # 8-bit grey and RGB PNGs: what the fast path decodes as an image
_GREY_COLOUR_TYPES = (0,)  # 8-bit grey PNGs: what it decodes as a mask


def _png_chunks_ok(data: bytes) -> tuple[int, int, int] | None:
    """``(width, height, colour type)`` of an 8-bit, non-interlaced PNG whose every chunk is
    whole with a correct CRC, up to IEND, and that has no ``eXIf`` chunk (an orientation to apply:
    the Pillow path does that); ``None`` otherwise (the caller falls back to Pillow, which
    accepts or names the problem). Checking the CRCs (zlib's crc32, ~0.1 ms for a CamVid image)
    keeps the fast decoder as strict as Pillow on damaged files."""
    if len(data) < 45 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if depth != 8 or interlace != 0:
        return None
    pos, end = 8, len(data)
    while pos + 12 <= end:
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        stop = pos + 8 + length
        if stop + 4 > end:
            return None
        kind = data[pos + 4 : pos + 8]
        if kind == b"eXIf" or zlib.crc32(data[pos + 4 : stop]) != struct.unpack(">I", data[stop : stop + 4])[0]:
            return None
        if kind == b"IEND":
            return width, height, colour
        pos = stop + 4
    return None


def _read_png_fast(path: str | Path, colour_types: tuple[int, ...]) -> np.ndarray | None:
    """An 8-bit grey ``(H, W)`` or RGB ``(H, W, 3)`` PNG decoded by libspng (``pyspng``, the
    ``fast`` extra), the file read once; ``None`` for anything else or when ``pyspng`` is
    missing, and on any failure (the Pillow path then reads the file or raises the
    :class:`DataError` naming the problem).

    Why: PNG decoding is most of a training sample's cost. On CamVid's 480x360 RGB PNGs libspng
    (SIMD filters) measured 5.6 ms per image against Pillow's 8.5 and libpng's (torchvision) 7.6,
    on one thread. :data:`MAX_IMAGE_PIXELS` is checked on the header before decoding."""
    try:
        import pyspng
    except ImportError:
        return None
    try:
        data = Path(path).read_bytes()
    except (OSError, ValueError):
        return None
    header = _png_chunks_ok(data)
    if header is None or header[2] not in colour_types:
        return None
    width, height, colour = header
    if MAX_IMAGE_PIXELS is not None and width * height > MAX_IMAGE_PIXELS:
        return None
    try:
        arr = pyspng.load(data, format="L" if colour == 0 else "RGB")
    except Exception:  # a damaged stream: Pillow names the problem
        return None
    want = (height, width) if colour == 0 else (height, width, 3)
    return arr if arr.dtype == np.uint8 and arr.shape == want else None


def _decode_fast(path: str | Path) -> torch.Tensor | None:
    """Decode an 8-bit RGB or grey PNG/JPEG with ``torchvision.io`` (libpng/libjpeg straight
    into a tensor, without Pillow's image object and NumPy copies: measured 1.3-1.5x faster on
    CamVid's 480x360 PNGs). The header checks of :func:`open_checked` have already run; EXIF
    orientation is applied as :func:`read_image` does. ``None`` (the caller decodes with
    Pillow, which names the problem) when torchvision cannot decode the file or is missing.

    A PNG goes to torchvision only when its chunks are whole with correct CRCs
    (:func:`_png_chunks_ok`): libpng's CRC error on a damaged PNG crashed the process
    (segmentation fault, torchvision 0.29) instead of raising."""
    try:
        from torchvision.io import ImageReadMode, decode_image

        data = Path(path).read_bytes()
        if data[:8] == _PNG_SIGNATURE and _png_chunks_ok(data) is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))  # torchcodec hint; read-only buffer
            raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            image = decode_image(raw, mode=ImageReadMode.RGB, apply_exif_orientation=True)
    except Exception:  # a truncated or odd file: Pillow decodes it or raises the DataError
        return None
    return image.contiguous() if image.dtype == torch.uint8 and image.dim() == 3 else None


def read_mask(path: str | Path, allow_palette: bool = True) -> np.ndarray:
    """A single-channel label image as a ``uint8``/``uint16``/``int32`` ``(H, W)`` array of raw ids.

    Palette ("P") PNGs give their palette indices (VOC stores class ids that way); 16-bit PNGs give
    ids up to 65535; bilevel images give 0 and 1. The mask is read as stored (no EXIF rotation).

    Raises:
        DataError: missing, empty, truncated or unreadable file; a colour (RGB, RGBA, CMYK ...),
            two-channel, floating-point or negative mask; a palette mask when ``allow_palette`` is
            false; more pixels than :data:`MAX_IMAGE_PIXELS`. The message names the file.
    """
    fast = _read_png_fast(path, _GREY_COLOUR_TYPES)  # 8-bit grey PNG (CamVid, Cityscapes ids): libspng
    if fast is not None:
        return fast
    with open_checked(path, "mask") as im:
        mode = im.mode
        if mode == "P" and not allow_palette:
            raise DataError(f"{path}: palette (colour) mask where label ids are expected")
        if mode in _COLOUR_MASK_MODES:
            raise DataError(
                f"{path}: mask is {mode} ({len(im.getbands())} channels of colour); expected single-channel "
                "label ids (mode L, P or 16-bit)"
            )
        if len(im.getbands()) != 1:
            raise DataError(
                f"{path}: mask is {mode} ({len(im.getbands())} channels); expected single-channel label ids"
            )
        if mode == "F":
            raise DataError(f"{path}: mask holds floating-point values (mode F); expected integer label ids")
        im.load()
        arr = np.asarray(im)
    if mode == "1":
        arr = arr.astype(np.uint8)
    elif arr.dtype.byteorder not in ("=", "|"):  # big-endian 16-bit ("I;16B")
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype.kind == "i" and arr.size and int(arr.min()) < 0:
        raise DataError(f"{path}: mask has negative values (min {int(arr.min())}); expected label ids >= 0")
    if arr.ndim != 2:
        raise DataError(f"{path}: mask has shape {arr.shape}; expected (H, W)")
    return arr

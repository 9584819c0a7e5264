"""Reading images and label masks with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from semseg.errors import DataError


def read_image(path: str | Path) -> torch.Tensor:
    """An RGB image as ``uint8`` tensor ``(3, H, W)``."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
    except FileNotFoundError as exc:
        raise DataError(f"image not found: {path}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from exc
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def read_mask(path: str | Path, allow_palette: bool = True) -> np.ndarray:
    """A single-channel label image as ``uint8``/``uint16``/``int32`` ``(H, W)`` array of raw ids.

    Palette ("P") PNGs give their palette indices (VOC stores class ids that way). RGB masks are
    refused: they hold colours, not ids, and need a dataset-specific colour map.
    """
    try:
        with Image.open(path) as im:
            if im.mode == "P" and not allow_palette:
                raise DataError(f"{path}: palette (colour) mask where label ids are expected")
            if im.mode in ("RGB", "RGBA"):
                raise DataError(f"{path}: mask is {im.mode} (colours); expected single-channel label ids")
            arr = np.asarray(im)
    except FileNotFoundError as exc:
        raise DataError(f"mask not found: {path}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"cannot read mask {path}: {exc}") from exc
    if arr.ndim != 2:
        raise DataError(f"{path}: mask has shape {arr.shape}; expected (H, W)")
    return arr

"""The bad-input corpus: every kind of broken or unusual input a user can hand semseg, written
from tiny synthetic images into a folder, with the answer semseg must give.

``build_corpus(root)`` writes the cases under ``root`` and returns them as :class:`Case` records;
``tests/test_bad_inputs.py`` runs each through the API and the CLI. Nothing here is a committed
binary: every file (truncated PNG/JPEG, 16-bit and CMYK images, a decompression-bomb header, a
pickle that would run code, ...) is generated on the spot, in a few kilobytes.

Run as a script to print the table of ``docs/bad_inputs.md`` (each case's input and the message
semseg answers with, taken from a real run)::

    python tests/corpus/build.py > docs/bad_inputs.md
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("bg", "fg")
H, W = 16, 24  # not square, so a transposed mask is told from a right one
COMMANDS = ("train", "eval", "predict", "data check")
TINY_TRAIN = [
    "--set", "train.iterations=1", "--set", "data.crop_size=[32,32]", "--set", "data.batch_size=1",
    "--set", "model.name=naive_convnet", "--set", "model.options={width: 4, depth: 1}",
    "--set", "train.precision=fp32", "--set", "train.device=cpu", "--no-progress",
]  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One input and the answer semseg must give.

    Attributes:
        name: a short id (the test id and the table row).
        what: the input in a few words.
        kind: ``data`` (a dataset tree), ``config`` (a YAML preset) or ``checkpoint`` (a run folder).
        commands: the CLI commands it is run through, a subset of :data:`COMMANDS` (``train`` on a
            checkpoint case means ``train --resume``).
        exit_code: ``2`` (refused with one line) or ``0`` (unusual but valid: accepted). ``data
            check`` lists problems on stdout and exits 1 instead of 2 (see :func:`expected_exit`).
        message: a fragment of the expected error line ('' for exit 0).
        culprit: the file name (or config key) the error line must name ('' for exit 0).
        root: the dataset root (``data.root``) for train / eval / data check.
        image: the image given to ``predict``.
        config: the YAML given to ``train --config``.
        run: the run folder for ``eval`` / ``predict --model`` / ``train --resume``; by default
            the corpus's good run.
        split: the split evaluated / checked (``eval --split``, ``data.val_split``), default ``val``.
        classes: the class names of the dataset.
    """

    name: str
    what: str
    kind: str
    commands: tuple[str, ...]
    exit_code: int
    message: str = ""
    culprit: str = ""
    root: Path | None = None
    image: Path | None = None
    config: Path | None = None
    run: Path | None = None
    split: str | None = None
    classes: tuple[str, ...] = CLASSES


def expected_exit(case: Case, command: str) -> int:
    """The exit code of ``command`` on ``case``: ``data check`` reports problems with 1."""
    return 1 if command == "data check" and case.exit_code == 2 else case.exit_code


def argv(case: Case, command: str, corpus: Path, out: Path) -> list[str]:
    """The ``semseg`` arguments that run ``case`` through ``command``; outputs go under ``out``."""
    run = str(case.run or corpus / "runs" / "good")
    classes = "[" + ",".join(case.classes) + "]"
    root = case.root or corpus / "good"
    data = ["--set", "data.dataset=folder", "--set", f"data.root={root}", "--set", f"data.classes={classes}"]
    if command == "train" and case.kind == "checkpoint":
        return ["train", "--resume", run, "--no-progress"]
    if command == "train":
        config = ["--config", str(case.config)] if case.config else []
        split = ["--set", f"data.val_split={case.split}"] if case.split else []
        name = ["--set", f"output.dir={out}", "--set", f"output.name={case.name}"]
        return ["train", *config, *data, *split, *TINY_TRAIN, *name]
    if command == "eval":
        split = ["--split", case.split] if case.split else []
        return ["eval", run, *(data if case.root else []), *split, "--no-progress"]
    if command == "predict":
        image = str(case.image or corpus / "good" / "images" / "f0.png")
        return ["predict", image, "--model", run, "--out", str(out / f"predict_{case.name}")]
    if command == "data check":
        split = ["--split", case.split] if case.split else []
        return ["data", "check", str(case.root), "--dataset", "folder", "--classes", ",".join(case.classes), *split]
    raise ValueError(f"unknown command {command!r}")


# ---------------------------------------------------------------- tiny synthetic files


def _rgb(seed: int = 0, size: tuple[int, int] = (H, W)) -> np.ndarray:
    """Noise (so PNG/JPEG files are not trivially small) with a bright square where the mask is 1."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 100, (*size, 3), dtype=np.uint8)
    arr[size[0] // 4 : 3 * size[0] // 4, size[1] // 4 : 3 * size[1] // 4] += 150
    return arr


def _ids(size: tuple[int, int] = (H, W), fg: int = 1) -> np.ndarray:
    """Mask ``uint8 (H, W)``: 0, the square of ``fg``, a first row of 255 (ignored)."""
    mask = np.zeros(size, dtype=np.uint8 if fg < 256 else np.uint16)
    mask[size[0] // 4 : 3 * size[0] // 4, size[1] // 4 : 3 * size[1] // 4] = fg
    mask[0] = 255
    return mask


def _save(path: Path, array_or_image: np.ndarray | Image.Image, **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    im.save(path, **kw)  # type: ignore[arg-type]
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG from raw scanlines (each prefixed with filter byte 0), written by hand: Pillow
    cannot write 48-bit RGB, and a decompression bomb must declare a size it never holds."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _dataset(root: Path, n: int = 2, suffix: str = ".png", start: int = 0) -> Path:
    """A clean folder dataset: ``n`` images ``f{i}{suffix}`` with masks ``f{i}.png``."""
    for i in range(start, start + n):
        _save(root / "images" / f"f{i}{suffix}", _rgb(i))
        _save(root / "masks" / f"f{i}.png", _ids())
    return root


# ---------------------------------------------------------------- the cases


def _data_cases(root: Path) -> list[Case]:
    cases: list[Case] = []
    all4 = COMMANDS
    tree = ("train", "eval", "data check")

    def add(
        name: str,
        what: str,
        commands: tuple[str, ...],
        code: int,
        message: str = "",
        culprit: str = "",
        setup: Callable[[Path], Path | None] | None = None,
        **kw: object,
    ) -> None:
        folder = root / name
        _dataset(folder)
        image = setup(folder) if setup else None
        cases.append(Case(name, what, "data", commands, code, message, culprit, root=folder, image=image, **kw))  # type: ignore[arg-type]

    add("clean", "a clean folder dataset (the baseline)", all4, 0, setup=lambda r: r / "images" / "f0.png")

    # ---- images that cannot be read
    def truncated_png(r: Path) -> Path:
        return _truncate(r / "images" / "f1.png", 0.5)

    def truncated_jpeg(r: Path) -> Path:
        (r / "images" / "f1.png").unlink()
        return _truncate(_save(r / "images" / "f1.jpg", _rgb(1), quality=95), 0.6)

    def zero_bytes(r: Path) -> Path:
        (r / "images" / "f1.png").write_bytes(b"")
        return r / "images" / "f1.png"

    def not_an_image(r: Path) -> Path:
        (r / "images" / "f1.png").write_text("this is not a PNG\n")
        return r / "images" / "f1.png"

    def bomb(r: Path) -> Path:
        # 100,000 x 100,000 8-bit gray declared in 60 bytes: refused from the header.
        (r / "images" / "f1.png").write_bytes(png_bytes(100_000, 100_000, 8, 0, b"\x00" * 64))
        return r / "images" / "f1.png"

    def symlink_loop(r: Path) -> Path:
        loop = r / "images" / "f1.png"
        loop.unlink()
        os.symlink("f1.png", loop)  # f1.png -> f1.png
        os.symlink("..", r / "images" / "up")  # a folder loop beside it (no image suffix: skipped)
        return loop

    add("truncated-png", "an image PNG cut in half", all4, 2, "cannot read image", "f1.png", truncated_png)
    add("truncated-jpeg", "an image JPEG cut at 60 %", all4, 2, "cannot read image", "f1.jpg", truncated_jpeg)
    add("empty-image", "a zero-byte image file", all4, 2, "the file is empty (0 bytes)", "f1.png", zero_bytes)
    add("not-an-image", "a text file named .png", all4, 2, "not an image file", "f1.png", not_an_image)
    add(
        "bomb",
        "a PNG header declaring 100,000 x 100,000 pixels (decompression bomb)",
        all4,
        2,
        "above the cap of 178,956,970",
        "f1.png",
        bomb,
    )
    add(
        "symlink-loop",
        "an image that is a symbolic link to itself",
        all4,
        2,
        "Too many levels of symbolic links",
        "f1.png",
        symlink_loop,
    )

    # ---- unusual images that must work (converted to 8-bit RGB)
    def kind(
        mode_fn: Callable[[np.ndarray], Image.Image], suffix: str = ".png", **save: object
    ) -> Callable[[Path], Path]:
        def setup(r: Path) -> Path:
            (r / "images" / "f1.png").unlink()
            return _save(r / "images" / f"f1{suffix}", mode_fn(_rgb(1)), **save)

        return setup

    def sixteen(arr: np.ndarray) -> Image.Image:
        return Image.fromarray(arr[:, :, 0].astype(np.uint16) * 257)  # mode I;16

    def rgb48(r: Path) -> Path:
        rows = b"".join(b"\x00" + (row.astype(">u2") * 257).tobytes() for row in _rgb(1))
        path = r / "images" / "f1.png"
        path.write_bytes(png_bytes(W, H, 16, 2, rows))
        return path

    def exif(mask_upright: bool) -> Callable[[Path], Path]:
        def setup(r: Path) -> Path:
            (r / "images" / "f1.png").unlink()
            upright = Image.fromarray(_rgb(1))
            stored = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back
            exif_data = Image.Exif()
            exif_data[0x0112] = 6
            _save(r / "images" / "f1.jpg", stored, exif=exif_data, quality=95)
            if mask_upright:
                _save(r / "masks" / "f1.png", _ids((H, W)))  # drawn on the upright view
            else:
                _save(r / "masks" / "f1.png", _ids((W, H)))  # the camera's stored orientation
            return r / "images" / "f1.jpg"

        return setup

    add("gray-image", "an 8-bit grayscale image", all4, 0, setup=kind(lambda a: Image.fromarray(a).convert("L")))
    add(
        "rgba-image", "an RGBA image (alpha dropped)", all4, 0, setup=kind(lambda a: Image.fromarray(a).convert("RGBA"))
    )
    add("cmyk-image", "a CMYK JPEG", all4, 0, setup=kind(lambda a: Image.fromarray(a).convert("CMYK"), ".jpg"))
    add("palette-image", "a palette (P) image", all4, 0, setup=kind(lambda a: Image.fromarray(a).quantize(16)))
    add("image-16bit", "a 16-bit grayscale image (scaled by >> 8)", all4, 0, setup=kind(sixteen))
    add("image-48bit", "a 48-bit (16 bits per channel) RGB PNG", all4, 0, setup=rgb48)
    add("exif-upright", "an EXIF-rotated JPEG whose mask is drawn upright", all4, 0, setup=exif(True))
    add(
        "exif-stored",
        "an EXIF-rotated JPEG whose mask follows the stored pixels",
        tree,
        2,
        "transposed: images are read upright",
        "f1.png",
        exif(False),
    )

    def nonascii(r: Path) -> Path:
        for sub in ("images", "masks"):
            (r / sub / "f1.png").rename(r / sub / "straße café 01.png")
        return r / "images" / "straße café 01.png"

    add("non-ascii-names", "names with spaces and non-ASCII characters", all4, 0, setup=nonascii)

    # ---- masks
    def mask_file(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        return lambda r: fn(r / "masks" / "f1.png")  # type: ignore[func-returns-value]

    add(
        "mask-16bit",
        "a 16-bit mask with ids up to 299 (300 classes)",
        ("train", "data check"),
        0,
        setup=mask_file(lambda p: _save(p, Image.fromarray(_ids(fg=299)))),
        classes=tuple(f"c{i}" for i in range(300)),
    )
    add(
        "mask-palette",
        "a palette (P) mask: indices are the ids",
        tree,
        0,
        setup=mask_file(lambda p: _save(p, _palette_mask(_ids()))),
    )
    add(
        "mask-bilevel",
        "a 1-bit mask (0 and 1)",
        tree,
        0,
        setup=mask_file(lambda p: _save(p, Image.fromarray(_ids() == 1))),
    )
    add(
        "mask-rgb",
        "an RGB (colour) mask where ids are expected",
        tree,
        2,
        "mask is RGB",
        "f1.png",
        mask_file(lambda p: _save(p, np.stack([_ids()] * 3, axis=-1))),
    )
    add(
        "mask-two-channel",
        "a gray + alpha (LA) mask",
        tree,
        2,
        "mask is LA (2 channels)",
        "f1.png",
        mask_file(lambda p: _save(p, Image.fromarray(_ids()).convert("LA"))),
    )
    add(
        "mask-labels-above",
        "mask values 7 with 2 classes",
        tree,
        2,
        "label values [7] outside the 2 classes",
        "f1.png",
        mask_file(lambda p: _save(p, _ids(fg=7))),
    )
    add(
        "mask-size",
        "a mask of another size than its image",
        tree,
        2,
        "mask is 12x16 but image f1.png is 24x16",
        "f1.png",
        mask_file(lambda p: _save(p, _ids((H, 12)))),
    )
    add(
        "mask-truncated",
        "a mask PNG cut in half",
        tree,
        2,
        "cannot read mask",
        "f1.png",
        mask_file(
            lambda p: (_save(p, np.random.default_rng(0).integers(0, 2, (H, W), dtype=np.uint8)), _truncate(p, 0.5))
        ),
    )
    add(
        "mask-empty",
        "a zero-byte mask",
        tree,
        2,
        "the file is empty (0 bytes)",
        "f1.png",
        mask_file(lambda p: p.write_bytes(b"")),
    )

    # ---- trees
    def duplicate_stem(r: Path) -> None:
        _save(r / "images" / "f0.jpg", _rgb(5))

    def missing_mask(r: Path) -> None:
        (r / "masks" / "f1.png").unlink()

    def many(r: Path) -> None:
        _dataset(r, 2, start=2)
        for i in (1, 2):
            (r / "masks" / f"f{i}.png").unlink()
        _save(r / "images" / "f3.jpg", _rgb(7))

    add(
        "duplicate-stem",
        "two images with one stem (f0.png, f0.jpg)",
        tree,
        2,
        "share the stem 'f0'",
        "f0.jpg",
        duplicate_stem,
    )
    add("missing-mask", "an image without its mask", tree, 2, "has no mask", "f1.png", missing_mask)
    add("many-problems", "two missing masks and a shared stem", tree, 2, "share the stem 'f3'", "f3.jpg", many)

    empty = root / "empty-folder"
    empty.mkdir()
    cases.append(
        Case("empty-folder", "an empty dataset folder", "data", tree, 2, "image folder not found", "images", root=empty)
    )
    no_images = root / "no-images"
    (no_images / "images").mkdir(parents=True)
    (no_images / "masks").mkdir()
    cases.append(
        Case("no-images", "images/ and masks/ without files", "data", tree, 2, "no images", "images", root=no_images)
    )

    lists = _dataset(root / "list-missing")
    for split in ("train", "val"):
        (lists / f"{split}.txt").write_text("images/f0.png masks/f0.png\nimages/gone.png masks/gone.png\n")
    cases.append(
        Case(
            "list-missing",
            "a list file naming a missing image",
            "data",
            tree,
            2,
            "image not found",
            "gone.png",
            root=lists,
        )
    )
    malformed = _dataset(root / "list-malformed")
    for split in ("train", "val"):
        (malformed / f"{split}.txt").write_text("images/f0.png masks/f0.png\nimages/f1.png\n")
    cases.append(
        Case(
            "list-malformed",
            "a list-file line with one name",
            "data",
            tree,
            2,
            "expected 'image mask'",
            "'images/f1.png'",
            root=malformed,
        )
    )
    spaced = root / "list-spaces"
    for i in range(2):
        _save(spaced / "images" / f"my image {i}.png", _rgb(i))
        _save(spaced / "masks" / f"my mask {i}.png", _ids())
    for split in ("train", "val"):
        (spaced / f"{split}.txt").write_text(
            "images/my image 0.png\tmasks/my mask 0.png\nimages/my image 1.png masks/my mask 1.png\n"
        )
    cases.append(
        Case("list-spaces", "a list file of names with spaces (tab, or one way to split)", "data", tree, 0, root=spaced)
    )

    splits = root / "unknown-split"
    _dataset(splits / "train")
    _dataset(splits / "val")
    cases.append(
        Case(
            "unknown-split",
            "split 'TYPO' in a root with train/ and val/",
            "data",
            tree,
            2,
            "unknown folder split 'TYPO'",
            "found: train, val",
            root=splits,
            split="TYPO",
        )
    )
    return cases


def _palette_mask(ids: np.ndarray) -> Image.Image:
    im = Image.fromarray(ids)
    im.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    return im


def _config_cases(root: Path) -> list[Case]:
    folder = root / "configs"
    folder.mkdir()
    files = {
        "config-list": ("a YAML list instead of a mapping", "- train\n- lr\n", "config-list.yaml"),
        "config-scalar": ("a YAML scalar", "42\n", "config-scalar.yaml"),
        "config-binary": ("binary bytes", b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x80", "config-binary.yaml"),
        "config-lr-negative": ("train.lr: -1", "train:\n  lr: -1\n", "train.lr"),
        "config-lr-nan": ("train.lr: .nan", "train:\n  lr: .nan\n", "train.lr"),
        "config-checkpoint-every-0": (
            "train.checkpoint_every: 0",
            "train:\n  checkpoint_every: 0\n",
            "train.checkpoint_every",
        ),
        "config-workers-negative": ("data.workers: -1", "data:\n  workers: -1\n", "data.workers"),
        "config-bad-date": (
            "train.seed: 2020-99-99 (YAML reads an impossible date)",
            "train:\n  seed: 2020-99-99\n",
            "config-bad-date.yaml",
        ),
    }
    cases = []
    for name, (what, content, culprit) in files.items():
        path = folder / f"{name}.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        cases.append(Case(name, what, "config", ("train",), 2, "", culprit, config=path))
    return cases


class _WritesMarker:
    """Pickles to a call of ``open(marker, "w")``: a loader that runs code creates the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (self.marker, "w")


def _good_run(root: Path, good_data: Path) -> Path:
    """A run folder with an untrained tiny naive_convnet checkpoint for ``good_data``."""
    from semseg.config import Config
    from semseg.data.folder import default_palette
    from semseg.engine.checkpoint import checkpoint_meta, save_checkpoint
    from semseg.models import create_model

    cfg = Config()
    cfg.model.name, cfg.model.options = "naive_convnet", {"width": 4, "depth": 1}
    cfg.data.dataset, cfg.data.root, cfg.data.classes = "folder", str(good_data), list(CLASSES)
    cfg.data.crop_size, cfg.data.batch_size = [32, 32], 1
    cfg.train.iterations, cfg.train.device, cfg.train.precision = 2, "cpu", "fp32"
    cfg.output.dir, cfg.output.name = str(root / "runs"), "good"
    model = create_model("naive_convnet", num_classes=len(CLASSES), channels_last=False, width=4, depth=1)
    model.set_metadata(list(CLASSES), default_palette(len(CLASSES)))
    run = root / "runs" / "good"
    save_checkpoint(run / "checkpoints" / "last", model, checkpoint_meta(model, False, cfg.to_dict()))
    return run


def _checkpoint_cases(root: Path, good: Path) -> list[Case]:
    import torch
    from safetensors.torch import save_file

    from semseg.models import create_model

    cases = []

    def variant(name: str, what: str, commands: tuple[str, ...], message: str, change: Callable[[Path], None]) -> None:
        """A copy of the good run with ``change`` applied to its checkpoint; the error must name
        the run folder (``name``) and contain ``message``."""
        run = root / "runs" / name
        shutil.copytree(good, run)
        change(run / "checkpoints" / "last")
        cases.append(Case(name, what, "checkpoint", commands, 2, message, name, run=run))

    def weights_of(**options: int) -> Callable[[Path], None]:
        def change(ckpt: Path) -> None:
            other = create_model("naive_convnet", num_classes=len(CLASSES), channels_last=False, **options)
            save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(ckpt / "model.safetensors"))

        return change

    def good_state(ckpt: Path) -> None:
        state = {"iteration": 1, "optimizer": {"state": {}, "param_groups": []}, "wall": 0.0, "cpu": 0.0}
        torch.save(state, ckpt / "state.pt")

    def truncated_state(ckpt: Path) -> None:
        good_state(ckpt)
        _truncate(ckpt / "state.pt", 0.5)

    def pickle_state(ckpt: Path) -> None:
        torch.save({"iteration": 1, "optimizer": _WritesMarker(ckpt.parent.parent / "MARKER")}, ckpt / "state.pt")

    def empty(name: str) -> Callable[[Path], None]:
        return lambda ckpt: (ckpt / name).write_bytes(b"") and None

    use, resume = ("eval", "predict"), ("train",)
    variant(
        "weights-other-architecture",
        "model.safetensors of a deeper network (other keys)",
        use,
        "do not fit",
        weights_of(width=4, depth=2),
    )
    variant(
        "weights-other-shapes",
        "model.safetensors of a wider network (same keys, other shapes)",
        use,
        "do not fit",
        weights_of(width=8, depth=1),
    )
    variant(
        "weights-truncated",
        "model.safetensors cut in half",
        use,
        "model.safetensors",
        lambda ckpt: _truncate(ckpt / "model.safetensors", 0.5) and None,
    )
    variant("weights-empty", "an empty model.safetensors", use, "model.safetensors", empty("model.safetensors"))
    variant("state-truncated", "state.pt cut in half (train --resume)", resume, "state.pt", truncated_state)
    variant("state-empty", "an empty state.pt (train --resume)", resume, "state.pt", empty("state.pt"))
    variant(
        "state-pickle-code",
        "state.pt whose pickle would run code (it would write a marker file)",
        resume,
        "state.pt",
        pickle_state,
    )
    return cases


def build_corpus(root: Path) -> list[Case]:
    """Write every case under ``root`` (an empty or missing folder) and return them.

    ``root/good`` is a clean 2-image folder dataset (classes ``bg``, ``fg``) and ``root/runs/good``
    a run folder with an untrained tiny ``naive_convnet`` checkpoint for it: the fixed parts the
    broken ones are compared with.
    """
    root.mkdir(parents=True, exist_ok=True)
    good_data = _dataset(root / "good")
    good = _good_run(root, good_data)
    return _data_cases(root) + _config_cases(root) + _checkpoint_cases(root, good)


# ---------------------------------------------------------------- the table of docs/bad_inputs.md


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """``semseg.cli.main(args)`` with its exit code, stdout and stderr captured (an exception that
    escapes ``main`` is exit code 1 and a ``Traceback: ...`` line)."""
    from semseg.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        except Exception as exc:  # a bug: shown in the table as the traceback's last line
            code = 1
            print(f"Traceback: {type(exc).__name__}: {exc}", file=sys.stderr)
    return code, out.getvalue(), err.getvalue()


def answer(case: Case, command: str, corpus: Path, out: Path) -> tuple[int, str]:
    """The exit code and the line semseg answers ``command`` on ``case`` with (the error line; for
    ``data check`` the first problem it lists)."""
    code, stdout, stderr = run_cli(argv(case, command, corpus, out))
    if command == "data check":
        lines = [line.strip()[2:] for line in stdout.splitlines() if line.strip().startswith("! ")]
    else:
        lines = [line for line in stderr.splitlines() if line.strip()]
    return code, lines[0] if lines else ""


def markdown_table(cases: list[Case], corpus: Path, out: Path) -> str:
    """The table of ``docs/bad_inputs.md``: per case the input, the commands, the expected exit
    code and the message semseg answers with now (paths shown relative to the corpus)."""
    rows = ["| case | input | commands | exit | semseg's answer |", "|---|---|---|---|---|"]
    for case in cases:
        command = case.commands[0]
        code, line = answer(case, command, corpus, out)
        line = re.sub(r"\x1b\[[0-9;]*m", "", line.replace(str(out), "<out>").replace(str(corpus), "<corpus>"))
        line = (line if len(line) <= 300 else line[:300] + " ...").replace("|", "\\|")
        expected = ", ".join(f"{c}: {expected_exit(case, c)}" for c in case.commands)
        shown = f"`{line}`" if line else ("(accepted)" if code == 0 else "")
        if code != expected_exit(case, command):
            shown += f" **(now exits {code})**"
        rows.append(f"| `{case.name}` | {case.what} | {', '.join(case.commands)} | {expected} | {shown} |")
    return "\n".join(rows)


PAGE = """# Bad inputs and semseg's answers

Every user error (a missing or corrupt file, a mask of the wrong size or kind, a label outside the
classes, a wrong config value, a broken checkpoint) raises a typed exception from the API
(`semseg.errors`: `DataError`, `ConfigError`, `CheckpointError`, `InvalidOptionError`) and, from
the CLI, one line `semseg: error: ...` naming the culprit, with exit code 2 and no traceback.
`semseg data check` lists every problem of a tree instead (exit 1). Unusual but valid inputs
(grayscale, RGBA, CMYK, palette, 16-bit or EXIF-rotated images, 16-bit masks, names with spaces
or non-ASCII characters) are accepted (exit 0).

The cases below are the corpus of `tests/corpus/build.py`, written from tiny synthetic files at
test time; `tests/test_bad_inputs.py` runs each through the API and every listed command
(`train` on a checkpoint case is `train --resume`). The answer column is the first command's
output on the current code, paths shortened to `<corpus>`; regenerate the page with
`python tests/corpus/build.py > docs/bad_inputs.md`. A row marked **now exits N** is a case
semseg does not yet answer as expected.

"""


def main() -> None:
    """Print ``docs/bad_inputs.md`` (its table from a corpus built in a temporary folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        cases = build_corpus(corpus)
        print(PAGE + markdown_table(cases, corpus, Path(tmp) / "out"))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    main()

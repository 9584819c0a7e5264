"""``semseg data check ROOT --dataset NAME``: walk a dataset tree and report what would break
training, plus the per-class pixel statistics behind class weights.

Every image and mask is decoded in full (a truncated PNG or JPEG is a problem, not a header that
looks fine): problems are collected (not raised) so one run lists them all — missing masks or
images, two images of one stem, wrong file names, image/mask size mismatches, unreadable,
truncated or oversized files, colour or palette masks where ids are expected, and label values
outside the classes. Pixel counts are of train ids
after the dataset's own label mapping, i.e. exactly what the loss and the metrics see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from semseg.constants import IGNORE_INDEX
from semseg.data.base import SegmentationDataset, size_mismatch
from semseg.data.io import binary_labels, read_image, read_mask
from semseg.data.layout import require_id_mask
from semseg.data.registry import BINARY_CLASSES, build_dataset, get_spec
from semseg.data.statistics import median_frequency_weights
from semseg.errors import ConfigError, DataError


@dataclass
class SplitReport:
    """Findings for one split. ``class_pixels[c]``: labelled pixels of class ``c``;
    ``image_pixels[c]``: all pixels of the images containing ``c`` (for median-frequency weights);
    ``class_images[c]``: how many images contain ``c``."""

    split: str
    pairs: int = 0
    problems: list[str] = field(default_factory=list)
    class_pixels: list[int] = field(default_factory=list)
    image_pixels: list[int] = field(default_factory=list)
    class_images: list[int] = field(default_factory=list)
    ignored_pixels: int = 0


@dataclass
class DataCheckReport:
    """The result of :func:`check_dataset`; ``str(report)`` is the printable summary."""

    dataset: str
    root: Path
    classes: list[str]
    splits: list[SplitReport]

    @property
    def ok(self) -> bool:
        """No problem found in any split."""
        return all(not s.problems for s in self.splits)

    @property
    def num_problems(self) -> int:
        """Problems found over all splits."""
        return sum(len(s.problems) for s in self.splits)

    def format(self, max_problems: int = 20) -> str:
        """The printable summary: per split its problems (at most ``max_problems``) and class table."""
        lines = [f"dataset {self.dataset} at {self.root}: {len(self.classes)} classes"]
        for s in self.splits:
            lines.append(f"\n[{s.split}] {s.pairs} pairs, {len(s.problems)} problem(s)")
            lines += [f"  ! {p}" for p in s.problems[:max_problems]]
            if len(s.problems) > max_problems:
                lines.append(f"  ! ... and {len(s.problems) - max_problems} more")
            if any(s.class_pixels):
                lines.append(_class_table(self.classes, s))
        lines.append("\nOK" if self.ok else f"\n{self.num_problems} problem(s) found")
        return "\n".join(lines)

    __str__ = format


def _class_table(classes: Sequence[str], s: SplitReport) -> str:
    total = sum(s.class_pixels)
    weights = median_frequency_weights(torch.tensor(s.class_pixels), torch.tensor(s.image_pixels)).tolist()
    width = max(8, *(len(c) for c in classes))
    rows = [f"  {'class':<{width}} {'pixels':>14} {'share %':>8} {'images':>7} {'mf weight':>9}"]
    for name, px, n, w in zip(classes, s.class_pixels, s.class_images, weights, strict=True):
        share = 100 * px / total if total else math.nan
        rows.append(f"  {name:<{width}} {px:>14,} {share:>8.3f} {n:>7} {w:>9.4f}")
    labelled = total + s.ignored_pixels
    ignored = 100 * s.ignored_pixels / labelled if labelled else 0.0
    rows.append(f"  ignored ({IGNORE_INDEX}): {s.ignored_pixels:,} pixels ({ignored:.2f}% of all)")
    return "\n".join(rows)


def check_dataset(
    name: str,
    root: str | Path,
    splits: Sequence[str] | None = None,
    *,
    classes: Sequence[str] | None = None,
    max_images: int | None = None,
    ignore_index: int = IGNORE_INDEX,
    binary: bool = False,
) -> DataCheckReport:
    """Check every pair of the given splits of dataset ``name`` at ``root``.

    Args:
        name: a name from :data:`semseg.data.DATASETS`.
        root: the dataset folder, as passed to the dataset class.
        splits: splits to check; default ``train`` and ``val`` where the dataset has them.
        classes: class names, only for ``folder``.
        max_images: check at most this many pairs per split (a quick look at a large dataset).
        ignore_index: the ignored train id.
        binary: read masks as binary (``data.binary``: 0 background, 1 or 255 foreground, 128
            ignored; ``folder`` only); the classes default to ``background, foreground``.

    Returns:
        A :class:`DataCheckReport`; it never raises for problems found in the tree.
    """
    spec = get_spec(name)
    if binary:
        if name != "folder":
            raise ConfigError(f"--binary needs the folder dataset, not {name!r}")
        classes = list(classes) if classes else list(BINARY_CLASSES)
    if splits is None:
        splits = [s for s in ("train", "val") if spec.splits is None or s in spec.splits]
    reports, names = [], list(classes or [])
    for split in splits:
        report = SplitReport(split)
        reports.append(report)
        try:
            pairs, label_map, split_classes, id_masks = _discover(name, root, split, classes, report)
        except DataError as exc:
            report.problems.append(str(exc))
            continue
        names = list(split_classes)
        _count_pairs(pairs[:max_images], label_map, len(names), ignore_index, id_masks, report, binary)
    return DataCheckReport(name, Path(root), names, reports)


def _discover(
    name: str, root: str | Path, split: str, classes: Sequence[str] | None, report: SplitReport
) -> tuple[list[tuple[Path, Path]], np.ndarray | None, Sequence[str], bool]:
    """The pairs and label semantics of a split; missing files go to ``report.problems``."""
    spec = get_spec(name)
    if spec.pair_finder is None:  # a dataset without a finder: its constructor raises its first problem
        ds: SegmentationDataset = build_dataset(name, root, split, classes=classes)
        report.pairs = len(ds)
        return ds.pairs, ds.label_map, ds.classes, False
    names = spec.classes if spec.classes is not None else classes
    if not names:
        raise ConfigError(f"dataset {name!r} needs its class names (--classes a,b,c; data.classes in a config)")
    pairs, problems = spec.pair_finder(root, split)
    report.pairs = len(pairs)
    report.problems += problems
    label_map = spec.label_map() if spec.label_map is not None else None
    return pairs, label_map, names, spec.id_masks


def _count_pairs(
    pairs: Sequence[tuple[Path, Path]],
    label_map: np.ndarray | None,
    num_classes: int,
    ignore_index: int,
    id_masks: bool,
    report: SplitReport,
    binary: bool = False,
) -> None:
    pixels = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    images = np.zeros(num_classes, dtype=np.int64)
    for image_path, mask_path in pairs:
        errors = []
        try:
            height, width = read_image(image_path).shape[1:]
        except DataError as exc:
            errors.append(str(exc))
        try:
            if id_masks:
                require_id_mask(mask_path)
            raw = read_mask(mask_path)
        except DataError as exc:
            errors.append(str(exc))
        if errors:
            report.problems += errors
            continue
        if raw.shape != (height, width):
            report.problems.append(size_mismatch(mask_path, image_path, raw.shape, (height, width)))
            continue
        if binary:
            try:
                raw = binary_labels(raw, mask_path)
            except DataError as exc:
                report.problems.append(str(exc))
                continue
        elif label_map is not None and int(raw.max()) >= len(label_map):
            report.problems.append(f"{mask_path}: raw label {int(raw.max())} has no entry in the label map")
            continue
        ids = label_map[raw] if label_map is not None and not binary else raw
        counts = np.bincount(ids.reshape(-1).astype(np.int64), minlength=max(num_classes, ignore_index + 1))
        bad = [int(v) for v in np.flatnonzero(counts) if v >= num_classes and v != ignore_index]
        if bad:
            report.problems.append(
                f"{mask_path}: label values {bad[:5]} outside the {num_classes} classes and not {ignore_index}"
            )
        present = counts[:num_classes] > 0
        pixels += counts[:num_classes]
        image_pixels += present * raw.size
        images += present
        report.ignored_pixels += int(counts[ignore_index]) if ignore_index < len(counts) else 0
    report.class_pixels = pixels.tolist()
    report.image_pixels = image_pixels.tolist()
    report.class_images = images.tolist()

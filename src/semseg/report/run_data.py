"""What a report reads: a run folder's logs, and an evaluation of its checkpoint on the val split
(the confusion matrix and the worst-predicted images, which the run folder does not keep)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor
from torch.utils.data import Dataset

from semseg.errors import DataError

# log.jsonl keys that are not loss terms.
NOT_LOSS_TERMS = ("iteration", "lr", "loss", "wall_s", "cpu_s")


@dataclass
class RunData:
    """The logs of one run folder.

    Attributes:
        path: the run folder.
        name: its folder name (made unique among the runs of one report by the caller).
        log: ``log.jsonl`` records (iteration, lr, loss, per-term losses, wall_s, cpu_s).
        evals: ``eval.jsonl`` records (iteration, miou, pixel_accuracy, ...); may be empty.
        metrics: ``metrics.json`` (final scores, ``per_class``), or ``None`` before the run ends.
        model_name: the registered model, from ``config.yaml`` (``None`` if unreadable).
    """

    path: Path
    name: str
    log: list[dict[str, Any]]
    evals: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    model_name: str | None = None

    def per_class_iou(self) -> dict[str, float] | None:
        """Final IoU by class name from ``metrics.json`` (NaN for a class absent from the val
        split), or ``None`` when the run has no final metrics."""
        per_class = (self.metrics or {}).get("per_class")
        if not isinstance(per_class, dict):
            return None
        return {name: _float(v.get("iou")) for name, v in per_class.items() if isinstance(v, dict)}


@dataclass
class WorstImage:
    """One validation image with its per-image mIoU.

    Shape:
        image ``uint8 (H, W, 3)``; target and prediction ``int64 (H, W)`` label ids (255 ignored).
    """

    index: int
    miou: float
    image: np.ndarray
    target: np.ndarray
    prediction: np.ndarray


@dataclass
class EvalResult:
    """A fresh evaluation of a run's checkpoint.

    Attributes:
        confusion: ``(C, C)`` pixel counts, rows = ground truth, columns = prediction.
        class_names, palette: the model's label semantics.
        scores: as :meth:`semseg.metrics.ConfusionMatrix.compute`.
        images: how many val images were evaluated.
        worst: the lowest per-image mIoU first.
    """

    confusion: np.ndarray
    class_names: list[str]
    palette: list[tuple[int, int, int]]
    scores: dict[str, Any]
    images: int
    worst: list[WorstImage]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines log. A broken last line (a run stopped mid-write) is skipped;
    a broken line before it raises :class:`~semseg.errors.DataError`."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                break
            raise DataError(f"{path}:{n} is not a JSON record") from None
        if isinstance(record, dict):
            records.append(record)
    return records


def load_run(path: str | Path) -> RunData:
    """Read a run folder made by ``semseg train``.

    Raises:
        DataError: no such folder, or no (or an empty) ``log.jsonl``: one line saying which.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"run folder not found: {path}")
    log_path = path / "log.jsonl"
    if not log_path.is_file():
        raise DataError(
            f"{path} has no log.jsonl: not a run folder of `semseg train`, or a run that has not logged yet"
        )
    log = [r for r in read_jsonl(log_path) if "iteration" in r]
    if not log:
        raise DataError(f"{log_path} holds no logged iteration yet; nothing to plot")
    evals = read_jsonl(path / "eval.jsonl") if (path / "eval.jsonl").is_file() else []
    metrics = None
    if (path / "metrics.json").is_file():
        try:
            metrics = json.loads((path / "metrics.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read {path / 'metrics.json'}: {exc}") from None
    return RunData(path, path.name, log, [e for e in evals if "iteration" in e], metrics, _model_name(path))


def _model_name(path: Path) -> str | None:
    try:
        config = yaml.safe_load((path / "config.yaml").read_text())
        return str(config["model"]["name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


class _Recorder(Dataset):
    """The val split as :func:`~semseg.engine.evaluate.evaluate` reads it, remembering the last
    item handed out, so the predictor that runs next can score that image on its own."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.index = -1
        self.mask: Tensor | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        image, mask = self.dataset[i]
        self.index, self.mask = i, mask
        return image, mask


def evaluate_checkpoint(
    run_dir: str | Path,
    max_images: int | None = None,
    worst: int = 4,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> EvalResult:
    """Evaluate a run's last checkpoint on its val split, as its training did (the saved config,
    a whole-image :class:`~semseg.inference.Predictor`, the one evaluation loop), keeping the
    confusion matrix and scoring each image on its own to find the ``worst`` ones.

    Args:
        run_dir: a run folder (or checkpoint folder).
        max_images: evaluate the first N val images (default: the run's ``data.max_val_images``).
        worst: how many of the lowest per-image mIoU images to return (each is predicted once
            more, to keep only ``worst`` images in memory).
        device: default CUDA when the run's ``train.device`` is ``auto`` or ``cuda`` and CUDA is
            present, else the CPU.

    Raises:
        CheckpointError: no checkpoint in ``run_dir``. DataError: the val split cannot be read
        (its message says that ``--no-eval`` makes plots from the logs alone).
    """
    from semseg.config import saved_config
    from semseg.data import build_dataset
    from semseg.engine.checkpoint import find_checkpoint, load_checkpoint_model, read_meta
    from semseg.engine.evaluate import evaluate
    from semseg.inference import Predictor
    from semseg.metrics import ConfusionMatrix
    from semseg.metrics.confusion import scores_from_confusion

    folder = find_checkpoint(run_dir)
    cfg = saved_config(read_meta(folder)["config"])
    if device is None:
        wants_cuda = cfg.train.device == "auto" or cfg.train.device.startswith("cuda")
        device = "cuda" if wants_cuda and torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    model = load_checkpoint_model(folder).to(device).eval()
    try:
        dataset = build_dataset(cfg.data.dataset, cfg.data.root, cfg.data.val_split, classes=cfg.data.classes)
    except DataError as exc:
        raise DataError(f"{exc} (pass --no-eval for plots from the logs only)") from None
    limit = cfg.data.max_val_images if max_images is None else max_images
    if limit is not None and limit < 1:
        raise DataError(f"--max-images must be at least 1, got {limit}")
    recorder = _Recorder(dataset)
    predictor = Predictor(model)
    num_classes = int(model.num_classes)  # type: ignore[arg-type]
    per_image: list[tuple[float, int]] = []

    def predict(image: Tensor) -> Tensor:
        pred = predictor(image)
        cm = ConfusionMatrix(num_classes, device=pred.device)
        cm.update(pred, recorder.mask.to(pred.device))  # type: ignore[union-attr]
        miou = float(scores_from_confusion(cm.mat)["miou"])  # type: ignore[arg-type]
        if not math.isnan(miou):  # an image without labelled pixels has no score
            per_image.append((miou, recorder.index))
        return pred

    scores, cm = evaluate(model, recorder, num_classes, device, predictor=predict, max_images=limit, progress=progress)
    n = len(dataset) if limit is None else min(limit, len(dataset))  # type: ignore[arg-type]
    names = model.class_names or [str(i) for i in range(num_classes)]
    palette = model.palette or [(int(v), int(v), int(v)) for v in np.linspace(0, 255, num_classes)]
    shown = []
    for miou, i in sorted(per_image)[: max(worst, 0)]:
        image, mask = dataset[i]
        shown.append(WorstImage(i, miou, image.permute(1, 2, 0).numpy(), mask.numpy(), predictor(image).cpu().numpy()))
    return EvalResult(cm.mat.cpu().numpy(), list(names), list(palette), scores, n, shown)

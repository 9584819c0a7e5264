"""Building a training run: everything :func:`semseg.engine.trainer.train` iterates over, made
once from a config (or from a run folder to resume), in one :class:`Run` another launcher can
drive with :func:`~semseg.engine.step.train_step` and the periodic functions of
:mod:`semseg.engine.periodic`.

Runs on CPU, one GPU, or many through ``torchrun`` (DDP; the environment decides).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

from semseg.config import Config, apply_resume_overrides, saved_config
from semseg.data import SegmentationDataset, build_dataset
from semseg.data.cache import CachedDataset
from semseg.data.io import read_image, set_max_image_pixels
from semseg.data.transforms import train_transform
from semseg.engine import distributed as dist_utils
from semseg.engine.batches import Batch, endless_batches
from semseg.engine.checkpoint import find_checkpoint, init_from_checkpoint, load_state, load_weights, read_meta
from semseg.engine.distill import Teacher, build_teacher
from semseg.engine.ema import WeightEMA
from semseg.engine.files import write_atomic
from semseg.engine.lock import RunLock
from semseg.engine.loss import build_criterion
from semseg.engine.optim import build_optimizer, lr_scale
from semseg.engine.state import Clock, restore_rng, seed_everything
from semseg.engine.sync_bn import convert_sync_batchnorm
from semseg.engine.tensorboard import TensorBoardLog
from semseg.errors import CheckpointError, ConfigError
from semseg.losses.criterion import SegmentationCriterion
from semseg.models import SegmentationModel, create_model, legacy_options
from semseg.models.registry import default_channels_last


@dataclass
class Run:
    """One training run, ready to step.

    Attributes:
        model: the bare model (checkpoints and evaluation use it); ``net`` is what trains: the
            model itself, or its DDP wrapper in a distributed run.
        train_set, val_set: the loader's dataset (augmented crops) and the full-size val split.
        batches: endless ``(uint8 (N, 3, h, w), int64 (N, h, w))`` batches, epoch after epoch.
        start_iteration: 0, or where the resumed checkpoint stopped.
        channels_last: the memory layout the model was built in (saved with every checkpoint).
        lock: rank 0's hold on the run folder (``None`` on other ranks); :meth:`close` releases it.
        lr_scale: the factor on ``train.lr`` (:func:`~semseg.engine.optim.lr_scale`).
        ema: the moving average of the weights, with ``train.ema_decay``.
        tensorboard: rank 0's event-file writer, with ``train.tensorboard``.
        teacher: the frozen model of ``train.distill`` whose soft targets are distilled.
        saved_iteration: the iteration of the newest checkpoint on disk (``None``: none yet).
    """

    cfg: Config
    run_dir: Path
    rank: int
    world: int
    device: torch.device
    model: SegmentationModel
    net: nn.Module
    channels_last: bool
    train_set: Dataset
    val_set: Dataset
    criterion: SegmentationCriterion
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    batches: Iterator[Batch]
    start_iteration: int
    clock: Clock
    lock: RunLock | None = None
    saved_iteration: int | None = None
    lr_scale: float = 1.0
    ema: WeightEMA | None = None
    tensorboard: TensorBoardLog | None = None
    teacher: Teacher | None = None

    def close(self) -> None:
        """Close the event files and release the run folder (idempotent)."""
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None
        if self.lock is not None:
            self.lock.release()

    @property
    def main(self) -> bool:
        """Whether this process writes the run folder (rank 0)."""
        return self.rank == 0


def build_run(
    cfg: Config, resume: str | Path | None = None, overwrite: bool = False, resume_overrides: Sequence[str] = ()
) -> Run:
    """Datasets, model, criterion, optimiser, loader and, with ``resume``, the saved state.

    With ``resume`` (a run folder or checkpoint), ``cfg`` is ignored: the run continues with the
    config it saved, its weights, optimiser moments, iteration, clock, random generators and
    position in the data. A new run never writes into a folder that holds a run unless
    ``overwrite`` says to replace it, and a folder another process writes is refused either way.
    ``resume_overrides`` (``section.key=value``) change the keys that are safe to change on a
    resume (:data:`semseg.config.SAFE_ON_RESUME`) and are refused for any other.
    The order of the steps below is the order the random generators are consumed in, so a
    seed reproduces a run.
    """
    state: dict[str, Any] | None = None
    ckpt: Path | None = None
    if resume is not None:
        ckpt = find_checkpoint(resume)
        meta = read_meta(ckpt)
        cfg = apply_resume_overrides(saved_config(meta["config"]), resume_overrides)
        # Rebuild the structure the checkpoint was trained as: the options it recorded (an older
        # checkpoint's completed with the defaults of its time), not today's defaults.
        saved = {k: v for k, v in meta.get("model_options", {}).items() if k != "channels_last"}
        recorded = legacy_options(cfg.model.name, saved)
        cfg.model.options = {**recorded, **cfg.model.options}
        state = load_state(ckpt)
        run_dir = ckpt.parent.parent
    else:
        run_dir = Path(cfg.output.dir) / (cfg.output.name or _default_run_name(cfg))
    tc = cfg.train
    rank, world, device = dist_utils.setup(tc.device)
    lock = claim_run_dir(run_dir, new=resume is None, overwrite=overwrite) if rank == 0 else None
    try:
        return _build(cfg, run_dir, rank, world, device, lock, state, ckpt)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _build(
    cfg: Config,
    run_dir: Path,
    rank: int,
    world: int,
    device: torch.device,
    lock: RunLock | None,
    state: dict[str, Any] | None,
    ckpt: Path | None,
) -> Run:
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    if tc.deterministic:
        make_deterministic(rank == 0)
    seed_everything(tc.seed + rank)

    train_data, train_set, val_set = build_datasets(cfg)
    model, channels_last = build_model(cfg, train_data, pretrained=state is None)
    if ckpt is not None:
        load_weights(ckpt, model)
    model.to(device)
    if world > 1 and tc.sync_bn in ("auto", True):
        model, replaced = convert_sync_batchnorm(model, device)
        if rank == 0 and replaced:
            print(f"sync_bn: {replaced} batch-norm layers normalise over all {world} processes' images")
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    criterion = build_criterion(cfg, train_set, model.num_classes, device)
    teacher = build_teacher(tc.distill, model.num_classes, device)
    optimizer = build_optimizer(model, tc)
    start, clock = 0, Clock()
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["iteration"])
        if start >= tc.iterations:
            raise ConfigError(f"{run_dir} already finished its {tc.iterations} iterations; nothing to resume")
        clock = Clock(float(state["wall"]), float(state["cpu"]))
        restore_rng(state)

    # Each step reads `accumulate` batches, so step i starts at batch i * accumulate.
    batches = endless_batches(
        train_set,
        cfg.data.batch_size,
        tc.seed,
        start * tc.accumulate,
        rank,
        world,
        cfg.data.workers,
        device.type == "cuda",
    )
    if rank == 0:
        write_atomic(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    scaler = torch.amp.GradScaler(enabled=tc.precision == "fp16")
    if state is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    saved = start if state is not None else None
    scale = lr_scale(tc, world)
    ema = None
    if tc.ema_decay is not None:
        ema = WeightEMA(model, tc.ema_decay, updates=start)
        if ckpt is not None:
            load_ema(ckpt, ema)
    if rank == 0 and (world > 1 or tc.accumulate > 1):
        images = cfg.data.batch_size * world * tc.accumulate
        how = f"train.lr x {scale:g} (scale_lr: linear)" if scale != 1 else "train.lr as set (scale_lr: none)"
        print(f"{images} images per step ({world} process(es) x {tc.accumulate} x batch {cfg.data.batch_size}); {how}")
    return Run(
        cfg, run_dir, rank, world, device, model, net, channels_last, train_set, val_set,
        criterion, optimizer, scaler, batches, start, clock, lock, saved, scale, ema,
        TensorBoardLog(run_dir) if tc.tensorboard and rank == 0 else None, teacher,
    )  # fmt: skip


def build_datasets(cfg: Config) -> tuple[SegmentationDataset, Dataset, Dataset]:
    """``(train split, the loader's augmented train set, val split)``; with ``data.cache`` both
    splits are decoded once and held in memory."""
    d = cfg.data
    set_max_image_pixels(d.max_image_pixels)
    transform = train_transform(tuple(d.crop_size), tuple(d.scale_range), d.flip, d.jitter)  # type: ignore[arg-type]
    binary = is_binary(cfg)
    train_data = build_dataset(d.dataset, d.root, d.train_split, classes=d.classes, binary=binary)
    val_data = build_dataset(d.dataset, d.root, d.val_split, classes=d.classes, binary=binary)
    check_bands(cfg, train_data)
    if d.cache:
        return train_data, CachedDataset(train_data, transform), CachedDataset(val_data)
    train_data.transform = transform
    return train_data, train_data, val_data


def is_binary(cfg: Config) -> bool:
    """A binary (foreground/background) run: ``data.binary: true`` or ``model.num_classes: 1``."""
    return cfg.data.binary or cfg.model.num_classes == 1


def check_bands(cfg: Config, dataset: SegmentationDataset) -> None:
    """Raise :class:`ConfigError` when the first training image does not have
    ``model.in_channels`` bands (one line naming both numbers and the image)."""
    if not len(dataset):
        return
    path = dataset.pairs[0][0]
    bands = int(read_image(path).shape[0])
    if bands != cfg.model.in_channels:
        raise ConfigError(
            f"model.in_channels={cfg.model.in_channels} but the images have {bands} bands ({path}); "
            f"set model.in_channels={bands}"
        )


def build_model(
    cfg: Config, train_data: SegmentationDataset, pretrained: bool = True
) -> tuple[SegmentationModel, bool]:
    """The configured model with the dataset's classes and palette, and its memory layout.

    ``pretrained=False`` skips the backbone weights and ``train.init_from`` (a resumed run loads
    every weight from its checkpoint anyway). With ``train.init_from`` the model starts from a
    trained checkpoint: every tensor of matching name and shape is copied, and the report of
    what was skipped (the classifier, for a new class count) is printed.
    """
    if is_binary(cfg):
        num_classes = 1  # one sigmoid channel; the dataset's two classes are background and foreground
    else:
        num_classes = cfg.model.num_classes or train_data.num_classes
        if num_classes != train_data.num_classes:
            raise ConfigError(f"model.num_classes={num_classes} but the dataset has {train_data.num_classes} classes")
    options = dict(cfg.model.options)
    if not pretrained:
        options.pop("backbone_weights", None)
    channels_last = cfg.model.channels_last
    if channels_last is None:
        channels_last = default_channels_last(cfg.model.name)
    if cfg.model.in_channels != 3:
        options["in_channels"] = cfg.model.in_channels
    model = create_model(cfg.model.name, num_classes=num_classes, channels_last=channels_last, **options)
    model.set_metadata(train_data.classes, train_data.palette, mean=cfg.data.mean, std=cfg.data.std)
    if pretrained and cfg.train.init_from:
        report = init_from_checkpoint(model, cfg.train.init_from)
        skipped = ", ".join(report["skipped"][:6]) or "none"
        print(
            f"init_from {cfg.train.init_from}: loaded {len(report['loaded'])} tensors; skipped (other shape, "
            f"re-initialised): {skipped}; not in the checkpoint: {len(report['missing'])}"
        )
    return model, channels_last


def load_ema(ckpt: Path, ema: WeightEMA) -> None:
    """The averaged weights a checkpoint saved (a run that turned the EMA on only now starts it
    from the checkpoint's weights)."""
    path = ckpt / "ema.safetensors"
    if path.is_file():
        saved = load_file(str(path), device=str(next(iter(ema.state.values())).device))
        if saved.keys() != ema.state.keys():
            raise CheckpointError(f"{path} does not fit the model")
        ema.state = saved


def make_deterministic(verbose: bool = True) -> None:
    """Deterministic kernels for ``train.deterministic``: ``torch.use_deterministic_algorithms``
    (an op without a deterministic kernel then raises instead of varying), cuDNN without
    autotuning, and the cuBLAS workspace setting CUDA needs for repeatable matrix products. On
    CPU, runs of one config already repeat bit for bit; on CUDA this costs speed (cuDNN picks
    slower deterministic algorithms, some ops run non-vectorised), which is why it is opt-in."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    if verbose:
        print("deterministic: on (deterministic kernels and no cuDNN autotuning: slower on CUDA, same speed on CPU)")


def claim_run_dir(run_dir: Path, new: bool, overwrite: bool = False) -> RunLock:
    """Create (or reuse, when resuming) the run folder and lock it.

    A new run refuses a folder that already holds a run (its config, log or checkpoints): that
    would replace a trained model. ``overwrite=True`` empties the folder first, once the lock
    shows nobody else is writing it.
    """
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"cannot make the run folder {run_dir}: a file of that name exists") from None
    except OSError as exc:
        raise ConfigError(f"cannot make the run folder {run_dir}: {exc.strerror}") from None
    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except PermissionError as exc:
        raise ConfigError(f"cannot write in the run folder {run_dir}: {exc.strerror}") from None
    if new:
        previous = sorted(p.name for p in run_dir.iterdir() if p.name != lock.path.name)
        if previous and not overwrite:
            lock.release()
            raise ConfigError(
                f"{run_dir} already holds a run ({', '.join(previous[:3])}); continue it with "
                f"`semseg train --resume {run_dir}`, pick another output.name, or pass --overwrite to replace it"
            )
        for name in previous:
            path = run_dir / name
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return lock


def _default_run_name(cfg: Config) -> str:
    return f"{cfg.model.name}_{cfg.data.dataset}_{datetime.now():%Y%m%d-%H%M%S}"

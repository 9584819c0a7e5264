"""The training loop, top to bottom: data, model, optimiser, then iterate with periodic logging,
checkpointing and evaluation. Iteration-based (as DeepLab and mmsegmentation), so the LR schedule
is a pure function of the iteration and a resumed run continues exactly where it stopped.

Runs on CPU, one GPU, or many through ``torchrun`` (DDP; the environment decides).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from semseg.api import attach_metadata
from semseg.config import Config, from_dict
from semseg.data.build import CachedDataset, build_dataset, collate_pairs
from semseg.data.transforms import normalize_batch, train_transform
from semseg.engine import distributed as dist_utils
from semseg.engine.checkpoint import find_checkpoint, load_state, load_weights, read_meta, save_checkpoint, unwrap
from semseg.engine.evaluate import evaluate
from semseg.engine.loss import build_criterion
from semseg.engine.report import write_eval_report
from semseg.engine.schedule import poly_lr
from semseg.errors import ConfigError
from semseg.models.registry import create_model


@dataclass
class Clock:
    """Wall and process-CPU seconds spent training, carried across resumes."""

    wall: float = 0.0
    cpu: float = 0.0

    def start(self) -> None:
        self._w, self._c = time.perf_counter(), time.process_time()

    def lap(self) -> None:
        w, c = time.perf_counter(), time.process_time()
        self.wall += w - self._w
        self.cpu += c - self._c
        self._w, self._c = w, c


def resolve_run_dir(cfg: Config) -> Path:
    name = cfg.output.name or f"{cfg.model.name}_{cfg.data.dataset}_{datetime.now():%Y%m%d-%H%M%S}"
    return Path(cfg.output.dir) / name


def train(cfg: Config, resume: str | Path | None = None, progress: bool = True) -> Path:
    """Train as ``cfg`` says (or continue the run folder ``resume``); return the run folder."""
    state: dict[str, Any] | None = None
    if resume is not None:
        ckpt = find_checkpoint(resume)
        cfg = from_dict(read_meta(ckpt)["config"])
        state = load_state(ckpt)
        run_dir = ckpt.parent.parent
    else:
        run_dir = resolve_run_dir(cfg)
    rank, world, device = dist_utils.setup(cfg.train.device)
    main = rank == 0
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    _seed_everything(tc.seed + rank)

    train_set, val_set = _datasets(cfg)
    num_classes = cfg.model.num_classes or train_set.dataset.num_classes
    if num_classes != train_set.dataset.num_classes:
        raise ConfigError(
            f"model.num_classes={num_classes} but the dataset has {train_set.dataset.num_classes} classes"
        )
    options = dict(cfg.model.options)
    if state is not None:
        options.pop("backbone_weights", None)  # the checkpoint holds every weight
    if tc.channels_last is not None:
        options = {"channels_last": tc.channels_last} | options  # model.options may override it
    model = create_model(cfg.model.name, num_classes=num_classes, **options)
    attach_metadata(model, train_set.dataset.classes, train_set.dataset.palette)
    if state is not None:
        load_weights(ckpt, model)
    model.to(device)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    criterion = build_criterion(cfg, train_set, num_classes, device)
    optimizer = _optimizer(model, cfg)
    start_it, clock = 0, Clock()
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        start_it = int(state["iteration"])
        if start_it >= tc.iterations:
            raise ConfigError(f"{run_dir} already finished its {tc.iterations} iterations; nothing to resume")
        clock = Clock(float(state["wall"]), float(state["cpu"]))
        _restore_rng(state)

    sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=tc.seed) if world > 1 else None
    loader = DataLoader(
        train_set,
        batch_size=cfg.data.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=cfg.data.workers,
        collate_fn=collate_pairs,
        drop_last=len(train_set) >= cfg.data.batch_size * world,
        persistent_workers=cfg.data.workers > 0,
        pin_memory=device.type == "cuda",
    )
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(run_dir / "config.yaml", _yaml(cfg))
    meta = _meta(cfg, model, num_classes)
    amp_dtype = autocast_dtype(tc.precision, device)
    scaler = torch.amp.GradScaler(enabled=tc.precision == "fp16")
    log_path = run_dir / "log.jsonl"

    net.train()
    epoch = start_it // max(1, len(loader))
    batches = _batches(loader, sampler, epoch)
    bar = tqdm(
        range(start_it, tc.iterations),
        initial=start_it,
        total=tc.iterations,
        disable=not (main and progress),
        desc="train",
    )
    clock.start()
    for it in bar:
        lr = poly_lr(it, tc.iterations, tc.lr, tc.poly_power, tc.warmup_iters)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        images, masks = next(batches)
        images = normalize_batch(images.to(device, non_blocking=True), model.mean, model.std)
        masks = masks.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            output = net(images, return_aux=True)
        loss, terms = criterion(output, masks)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

        done = it + 1
        if done % tc.log_every == 0 or done == tc.iterations:
            clock.lap()
            record = {
                "iteration": done,
                "lr": lr,
                **terms,
                "wall_s": round(clock.wall, 1),
                "cpu_s": round(clock.cpu, 1),
            }
            bar.set_postfix(loss=f"{terms['loss']:.3f}", lr=f"{lr:.2e}")
            if main:
                _append(log_path, record)
        if main and (done % tc.checkpoint_every == 0 or done == tc.iterations):
            clock.lap()
            save_checkpoint(
                run_dir / "checkpoints" / "last",
                model,
                {**meta, "iteration": done},
                _train_state(optimizer, done, clock),
            )
        if (tc.eval_every and done % tc.eval_every == 0) or done == tc.iterations:
            clock.lap()
            dist_utils.broadcast_buffers(model)
            # The bare model, not the DDP wrapper: ranks evaluate different numbers of images and
            # DDP's forward would issue collectives that no longer pair up.
            scores, _ = evaluate(
                model,
                val_set,
                num_classes,
                device,
                rank=rank,
                world_size=world,
                max_images=cfg.data.max_val_images,
                progress=main and progress,
            )
            if main:
                record = {
                    "iteration": done,
                    "wall_s": round(clock.wall, 1),
                    "cpu_s": round(clock.cpu, 1),
                    **_summary(scores),
                }
                _append(run_dir / "eval.jsonl", record)
                bar.write(
                    f"iter {done}: mIoU {100 * scores['miou']:.2f}%  pixel acc {100 * scores['pixel_accuracy']:.2f}%  ({clock.wall / 60:.1f} min wall, {clock.cpu / 60:.1f} min CPU)"
                )
            clock.start()  # evaluation time is not training time
    if main:
        write_eval_report(
            run_dir,
            model,
            scores,
            val_set,
            device,
            extra={
                "iteration": tc.iterations,
                "train_wall_s": round(clock.wall, 1),
                "train_cpu_s": round(clock.cpu, 1),
            },
        )
    dist_utils.barrier()
    dist_utils.cleanup()
    return run_dir


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting; ``auto`` picks bfloat16 only where the
    hardware computes it natively (AVX512-BF16/AMX CPUs, Ampere+ GPUs), since emulated bf16 is
    slower than fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision=fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def _datasets(cfg: Config) -> tuple[CachedDataset, Any]:
    d = cfg.data
    transform = train_transform(tuple(d.crop_size), tuple(d.scale_range), d.flip, d.jitter)  # type: ignore[arg-type]
    train_raw = build_dataset(d.dataset, d.root, d.train_split, classes=d.classes)
    val_raw = build_dataset(d.dataset, d.root, d.val_split, classes=d.classes)
    if d.cache:
        return CachedDataset(train_raw, transform), CachedDataset(val_raw)
    train_raw.transform = transform
    return _Uncached(train_raw), val_raw


class _Uncached(torch.utils.data.Dataset):
    """Same interface as CachedDataset (``.dataset``) without holding images in memory."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[i]


def _optimizer(model: nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """Backbone at ``lr``, heads at ``lr * head_lr_mult``; no weight decay on norms and biases."""
    tc = cfg.train
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        mult = 1.0 if name.startswith("backbone.") else tc.head_lr_mult
        decay = 0.0 if p.ndim <= 1 else tc.weight_decay
        groups.setdefault((mult, decay), []).append(p)
    params = [{"params": ps, "lr_mult": m, "weight_decay": wd, "lr": tc.lr * m} for (m, wd), ps in groups.items()]
    if tc.optimizer == "sgd":
        return torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum)
    return torch.optim.AdamW(params, lr=tc.lr)


def _batches(loader: DataLoader, sampler: DistributedSampler | None, epoch: int):  # type: ignore[no-untyped-def]
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _meta(cfg: Config, model: nn.Module, num_classes: int) -> dict[str, Any]:
    return {
        "model_name": cfg.model.name,
        "model_options": {k: v for k, v in cfg.model.options.items() if k != "backbone_weights"},
        "num_classes": num_classes,
        "class_names": list(unwrap(model).class_names),
        "palette": [list(c) for c in unwrap(model).palette],
        "mean": list(unwrap(model).mean),
        "std": list(unwrap(model).std),
        "config": cfg.to_dict(),
    }


def _train_state(optimizer: torch.optim.Optimizer, iteration: int, clock: Clock) -> dict[str, Any]:
    return {
        "optimizer": optimizer.state_dict(),
        "iteration": iteration,
        "wall": clock.wall,
        "cpu": clock.cpu,
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
        "python_rng": torch.tensor(random.getstate()[1], dtype=torch.int64),
    }


def _restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch_rng"])
    keys = state["numpy_rng"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, int(state["numpy_pos"]), 0, 0.0))
    random.setstate((3, tuple(int(v) for v in state["python_rng"].tolist()), None))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _summary(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: scores[k] for k in ("miou", "pixel_accuracy", "mean_accuracy", "mf1", "fwiou")}


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _yaml(cfg: Config) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)

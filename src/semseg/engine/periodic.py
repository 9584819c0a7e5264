"""What a run does every so often, and once at the end: log, checkpoint, evaluate, report.

Each function takes the :class:`~semseg.engine.run.Run` and the number of iterations done, and
keeps training time honest: the clock is lapped before the work and restarted after it, so
checkpointing and evaluation are not counted as training.
"""

from __future__ import annotations

from typing import Any

from semseg.engine import distributed as dist_utils
from semseg.engine.checkpoint import checkpoint_meta, save_checkpoint
from semseg.engine.evaluate import evaluate
from semseg.engine.files import append_jsonl
from semseg.engine.machine import describe_machine
from semseg.engine.report import prediction_panel, write_eval_report
from semseg.engine.run import Run
from semseg.engine.state import rng_state
from semseg.engine.tensorboard import PANELS

SUMMARY_KEYS = ("miou", "pixel_accuracy", "mean_accuracy", "mf1", "fwiou")


def is_due(done: int, every: int, total: int) -> bool:
    """Whether a periodic task runs after ``done`` iterations: every ``every`` (0: never) and at the end."""
    return (every > 0 and done % every == 0) or done == total


def log_step(run: Run, done: int, terms: dict[str, float]) -> dict[str, Any]:
    """Append the step's terms and the training time so far to ``log.jsonl``; return the record."""
    run.clock.lap()
    record = {"iteration": done, **terms, "wall_s": round(run.clock.wall, 1), "cpu_s": round(run.clock.cpu, 1)}
    if run.main:
        append_jsonl(run.run_dir / "log.jsonl", record)
    if run.tensorboard is not None:
        run.tensorboard.step(done, terms)
    return record


def save_run_checkpoint(run: Run, done: int) -> None:
    """Write ``checkpoints/last``: weights, meta (with the layout and config) and the training
    state (optimiser, iteration, clock, random generators) that ``--resume`` restores."""
    if not run.main or run.saved_iteration == done:
        return
    run.clock.lap()
    meta = {**checkpoint_meta(run.model, run.channels_last, run.cfg.to_dict()), "iteration": done}
    state = {
        "optimizer": run.optimizer.state_dict(),
        "iteration": done,
        "wall": run.clock.wall,
        "cpu": run.clock.cpu,
        "scaler": run.scaler.state_dict(),
        **rng_state(),
    }
    extra = {"ema": run.ema.state} if run.ema is not None else None
    save_checkpoint(run.run_dir / "checkpoints" / "last", run.model, meta, state, extra)
    run.saved_iteration = done
    run.clock.start()


def evaluate_run(run: Run, done: int, progress: bool = True) -> dict[str, Any]:
    """Evaluate on the val split (every rank its shard) and append the summary to ``eval.jsonl``;
    with ``train.ema_decay`` the averaged weights are evaluated too (``scores["ema"]``)."""
    run.clock.lap()
    dist_utils.broadcast_buffers(run.model)
    scores = _evaluate(run, progress)
    if run.ema is not None:
        with run.ema.applied(run.model):
            ema_scores = _evaluate(run, progress)
        scores["ema"] = {k: ema_scores[k] for k in SUMMARY_KEYS}
    if run.main:
        summary = {k: scores[k] for k in SUMMARY_KEYS}
        if "ema" in scores:
            summary |= {f"ema_{k}": v for k, v in scores["ema"].items()}
        record = {"iteration": done, "wall_s": round(run.clock.wall, 1), "cpu_s": round(run.clock.cpu, 1), **summary}
        append_jsonl(run.run_dir / "eval.jsonl", record)
    if run.tensorboard is not None:
        run.tensorboard.evaluation(done, scores, run.model.class_names or [])
        items = [run.val_set[i] for i in range(min(PANELS, len(run.val_set)))]  # type: ignore[arg-type]
        run.tensorboard.panels(done, [prediction_panel(run.model, image, mask) for image, mask in items])
    run.clock.start()
    return scores


def _evaluate(run: Run, progress: bool) -> dict[str, Any]:
    # The bare model, not the DDP wrapper: ranks evaluate different numbers of images and
    # DDP's forward would issue collectives that no longer pair up.
    scores, _ = evaluate(
        run.model,
        run.val_set,
        run.model.num_labels,
        run.device,
        rank=run.rank,
        world_size=run.world,
        max_images=run.cfg.data.max_val_images,
        progress=run.main and progress,
    )
    return scores


def finish_run(run: Run, scores: dict[str, Any]) -> None:
    """Write the final report (``metrics.json``, ``per_class.txt``, ``overlay.png``) and close
    the process group."""
    if run.main:
        extra = {
            "iteration": run.cfg.train.iterations,
            "train_wall_s": round(run.clock.wall, 1),
            "train_cpu_s": round(run.clock.cpu, 1),
            "machine": describe_machine(run.device),
        }
        write_eval_report(run.run_dir, run.model, scores, run.val_set, run.device, extra=extra)
    dist_utils.barrier()
    dist_utils.cleanup()

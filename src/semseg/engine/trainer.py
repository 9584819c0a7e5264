"""The training loop, top to bottom. Iteration-based (as DeepLab and mmsegmentation), so the LR
schedule is a pure function of the iteration and a resumed run continues exactly where it
stopped. The pieces are public so another launcher can drive them:
:func:`~semseg.engine.run.build_run`, :func:`~semseg.engine.step.train_step` and the periodic
log / checkpoint / evaluate of :mod:`semseg.engine.periodic`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from semseg.config import Config
from semseg.engine.periodic import evaluate_run, finish_run, is_due, log_step, save_run_checkpoint
from semseg.engine.run import build_run
from semseg.engine.step import train_step
from semseg.errors import Interrupted


def train(
    cfg: Config,
    resume: str | Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    resume_overrides: Sequence[str] = (),
) -> Path:
    """Train as ``cfg`` says (or continue the run folder ``resume``); return the run folder.

    ``overwrite=True`` replaces a finished run of the same name (otherwise refused);
    ``resume_overrides`` change the keys that may change on a resume (iterations, intervals, data
    root; see :data:`semseg.config.SAFE_ON_RESUME`). The first
    Ctrl-C finishes the current step, saves a checkpoint and raises :class:`Interrupted`; a
    second one stops at once (the previous checkpoint stays intact).
    """
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    try:
        run = build_run(cfg, resume, overwrite, resume_overrides)
    except BaseException:
        torch.use_deterministic_algorithms(deterministic_before)  # train.deterministic is for this run only
        raise
    tc = run.cfg.train
    bar = tqdm(
        range(run.start_iteration, tc.iterations),
        initial=run.start_iteration,
        total=tc.iterations,
        disable=not (run.main and progress),
        desc="train",
    )
    scores: dict[str, Any] = {}
    try:
        with interrupt_flag() as stop:
            run.clock.start()
            for iteration in bar:
                terms = train_step(run, iteration)
                done = iteration + 1
                if is_due(done, tc.log_every, tc.iterations):
                    log_step(run, done, terms)
                    rate = bar.format_dict.get("rate") or 0.0  # steps/s as tqdm measures them
                    images = run.cfg.data.batch_size * run.world * tc.accumulate * rate
                    bar.set_postfix(loss=f"{terms['loss']:.3f}", lr=f"{terms['lr']:.2e}", img_s=f"{images:.1f}")
                if is_due(done, tc.checkpoint_every, tc.iterations) or stop.is_set():
                    save_run_checkpoint(run, done)
                if stop.is_set():
                    raise Interrupted(
                        f"interrupted after iteration {done}; checkpoint saved; resume with "
                        f"`semseg train --resume {run.run_dir}`"
                    )
                if is_due(done, tc.eval_every, tc.iterations):
                    scores = evaluate_run(run, done, progress)
                    if run.main:
                        ema = f" (EMA {100 * scores['ema']['miou']:.2f}%)" if "ema" in scores else ""
                        bar.write(
                            f"iter {done}: mIoU {100 * scores['miou']:.2f}%{ema}  "
                            f"pixel acc {100 * scores['pixel_accuracy']:.2f}%  "
                            f"({run.clock.wall / 60:.1f} min wall, {run.clock.cpu / 60:.1f} min CPU)"
                        )
        finish_run(run, scores)
    finally:
        bar.close()
        run.close()
        torch.use_deterministic_algorithms(deterministic_before)  # train.deterministic is for this run only
    return run.run_dir


@contextlib.contextmanager
def interrupt_flag() -> Iterator[threading.Event]:
    """An event set by the first SIGINT (Ctrl-C); the second SIGINT raises ``KeyboardInterrupt``
    as usual. Outside the main thread (where signals cannot be caught) the event is never set."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def first(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the second Ctrl-C exits at once

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)

"""The training loop, top to bottom. Iteration-based (as DeepLab and mmsegmentation), so the LR
schedule is a pure function of the iteration and a resumed run continues exactly where it
stopped. The pieces are public so another launcher can drive them:
:func:`~semseg.engine.run.build_run`, :func:`~semseg.engine.step.train_step` and the periodic
log / checkpoint / evaluate of :mod:`semseg.engine.periodic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm import tqdm

from semseg.config import Config
from semseg.engine.periodic import evaluate_run, finish_run, is_due, log_step, save_run_checkpoint
from semseg.engine.run import build_run
from semseg.engine.step import train_step


def train(cfg: Config, resume: str | Path | None = None, progress: bool = True) -> Path:
    """Train as ``cfg`` says (or continue the run folder ``resume``); return the run folder."""
    run = build_run(cfg, resume)
    tc = run.cfg.train
    bar = tqdm(
        range(run.start_iteration, tc.iterations),
        initial=run.start_iteration,
        total=tc.iterations,
        disable=not (run.main and progress),
        desc="train",
    )
    scores: dict[str, Any] = {}
    run.clock.start()
    for iteration in bar:
        terms = train_step(run, iteration)
        done = iteration + 1
        if is_due(done, tc.log_every, tc.iterations):
            log_step(run, done, terms)
            bar.set_postfix(loss=f"{terms['loss']:.3f}", lr=f"{terms['lr']:.2e}")
        if is_due(done, tc.checkpoint_every, tc.iterations):
            save_run_checkpoint(run, done)
        if is_due(done, tc.eval_every, tc.iterations):
            scores = evaluate_run(run, done, progress)
            if run.main:
                bar.write(
                    f"iter {done}: mIoU {100 * scores['miou']:.2f}%  pixel acc {100 * scores['pixel_accuracy']:.2f}%  "
                    f"({run.clock.wall / 60:.1f} min wall, {run.clock.cpu / 60:.1f} min CPU)"
                )
    finish_run(run, scores)
    return run.run_dir

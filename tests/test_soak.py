"""Soak: 2,000 training iterations of a tiny model on CPU, recording resident memory, to catch a
leak that short tests cannot see (a growing log, cached tensors, a DataLoader that keeps
iterators). On demand: ``python -m pytest -m slow tests/test_soak.py -s`` prints the figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from semseg.config import Config, apply_overrides
from semseg.engine.periodic import is_due, log_step, save_run_checkpoint
from semseg.engine.run import build_run
from semseg.engine.step import train_step

ITERATIONS = 2000


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc")
def test_memory_stays_flat_over_2000_iterations(tmp_path: Path) -> None:
    cfg = apply_overrides(
        Config(),
        [
            "model.name=naive_convnet",
            "model.options={width: 8, depth: 2}",
            "data.crop_size=[32,32]",
            "data.batch_size=4",
            f"train.iterations={ITERATIONS}",
            "train.precision=fp32",
            "train.log_every=10",
            "train.checkpoint_every=100",
            f"output.dir={tmp_path}",
            "output.name=soak",
        ],
    )
    run = build_run(cfg)
    samples = []
    try:
        run.clock.start()
        for iteration in range(ITERATIONS):
            terms = train_step(run, iteration)
            done = iteration + 1
            if is_due(done, cfg.train.log_every, ITERATIONS):
                log_step(run, done, terms)
            if is_due(done, cfg.train.checkpoint_every, ITERATIONS):
                save_run_checkpoint(run, done)
            if done % 250 == 0:
                samples.append((done, _rss_mb()))
    finally:
        run.close()
    print("\niteration  RSS MiB")
    for done, rss in samples:
        print(f"{done:9d}  {rss:7.1f}")
    # After warm-up (the first 500 iterations: allocator pools, epoch iterators), resident memory
    # must not keep growing: at most 20 MiB more over the remaining 1,500 iterations.
    warm = dict(samples)[500]
    assert samples[-1][1] - warm < 20, samples

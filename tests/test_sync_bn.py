"""Synchronised batch norm on CPU (gloo): one DDP training step of two processes, each on half
the batch, gives the weights and running statistics of one process on the whole batch."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from semseg.engine.sync_bn import DistributedBatchNorm2d, convert_sync_batchnorm
from semseg.models import create_model

CLASSES = 3


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("naive_convnet", num_classes=CLASSES, width=4, depth=2, channels_last=False).train()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 3, 8, 8, generator=g) * 2 + 1, torch.randint(0, CLASSES, (4, 8, 8), generator=g)


def _step(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    F.cross_entropy(model(images), masks).backward()  # every pixel labelled: equal counts per half
    opt.step()


def _worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        model, replaced = convert_sync_batchnorm(_model(), torch.device("cpu"))
        assert replaced == 2 and sum(isinstance(m, DistributedBatchNorm2d) for m in model.modules()) == 2
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        images, masks = _batch()
        _step(ddp, images[2 * rank : 2 * rank + 2], masks[2 * rank : 2 * rank + 2])
        if rank == 0:
            torch.save(model.state_dict(), out)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")
def test_two_processes_with_sync_bn_equal_one_process_on_the_whole_batch(tmp_path: Path) -> None:
    single = _model()
    _step(single, *_batch())
    out = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=2, join=True)
    synced = torch.load(out, weights_only=True)
    expected = single.state_dict()
    assert synced.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(synced[key], value, rtol=1e-4, atol=1e-6, msg=key)


def test_without_sync_the_halves_differ_from_the_whole() -> None:
    """The check above can fail: plain BN on each half normalises with other statistics."""
    single, half = _model(), _model()
    images, _ = _batch()
    with torch.no_grad():
        assert not torch.allclose(single(images)[:2], half(images[:2]), atol=1e-4)


def test_single_process_and_eval_are_plain_batch_norm() -> None:
    plain = torch.nn.BatchNorm2d(4)
    plain.running_mean.fill_(0.5)
    sync, replaced = convert_sync_batchnorm(torch.nn.Sequential(plain), torch.device("cpu"))
    assert replaced == 1 and isinstance(sync[0], DistributedBatchNorm2d)
    assert torch.equal(sync[0].running_mean, torch.full((4,), 0.5))
    x = torch.randn(2, 4, 3, 3)
    reference = torch.nn.BatchNorm2d(4)
    reference.running_mean.fill_(0.5)
    torch.testing.assert_close(sync(x), reference(x))
    sync.eval()
    reference.eval()
    torch.testing.assert_close(sync(x), reference(x))

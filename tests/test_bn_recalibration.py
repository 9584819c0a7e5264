"""Batch-norm recalibration: equal-weight statistics of whole images, weights untouched, and the
``semseg recalibrate-bn`` command writing a new checkpoint that evaluates like any other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import semseg
from semseg import create_model
from semseg.cli import main
from semseg.data.transforms import normalize_batch
from semseg.engine.bn_recalibration import batch_norms, recalibrate_batch_norm
from semseg.errors import InvalidOptionError

TINY = [
    "--set", "train.iterations=2", "--set", "data.crop_size=[64,64]", "--set", "data.batch_size=2",
    "--set", "model.options.backbone_weights=null", "--set", "data.max_val_images=2",
    "--set", "train.checkpoint_every=1", "--set", "train.precision=fp32", "--no-progress",
]  # fmt: skip


def _images(n: int, size: tuple[int, int] = (40, 56)) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randint(0, 256, (3, *size), generator=g, dtype=torch.uint8), torch.zeros(size, dtype=torch.long))
        for _ in range(n)
    ]


def _model() -> nn.Module:
    return create_model("naive_convnet", num_classes=3).eval()


def test_statistics_are_equal_weight_averages_of_whole_image_batches() -> None:
    model = _model()
    first = batch_norms(model)[0]
    seen: list[torch.Tensor] = []
    hook = first.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().clone()))
    params = {k: v.clone() for k, v in model.named_parameters()}
    data = _images(6)
    used = recalibrate_batch_norm(model, data, images=None, batch_size=2, progress=False)
    hook.remove()
    assert used == 6 and len(seen) == 3  # three batches of two whole images
    batch_means = torch.stack([x.mean(dim=(0, 2, 3)) for x in seen])
    batch_vars = torch.stack([x.transpose(0, 1).flatten(1).var(dim=1) for x in seen])
    torch.testing.assert_close(first.running_mean, batch_means.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(first.running_var, batch_vars.mean(0), rtol=1e-4, atol=1e-6)
    assert not model.training and first.momentum == 0.1  # momentum restored, eval mode
    for k, v in model.named_parameters():
        assert torch.equal(v, params[k]), k  # only the running statistics change
    # The first batch norm saw the normalised whole images (the shape inference gives it), not crops.
    shapes: list[torch.Size] = []
    hook = first.register_forward_pre_hook(lambda _m, inputs: shapes.append(inputs[0].shape))
    with torch.no_grad():
        model(normalize_batch(data[0][0][None], model.mean, model.std))
    hook.remove()
    assert seen[0].shape[-2:] == shapes[0][-2:]


def test_a_lone_image_goes_with_its_mirror_and_sizes_are_not_mixed() -> None:
    model = _model()
    shapes: list[tuple[int, ...]] = []
    hook = batch_norms(model)[0].register_forward_pre_hook(lambda _m, inputs: shapes.append(tuple(inputs[0].shape)))
    data = _images(3) + _images(1, size=(48, 32))
    recalibrate_batch_norm(model, data, batch_size=2, progress=False)
    hook.remove()
    assert [s[0] for s in shapes] == [2, 2, 2]  # (0, 1), (2 + mirror), (3 + mirror)
    assert shapes[0][-2:] == shapes[1][-2:] != shapes[2][-2:]


def test_bad_options_are_refused() -> None:
    with pytest.raises(InvalidOptionError, match="batch_size"):
        recalibrate_batch_norm(_model(), _images(2), batch_size=1, progress=False)
    with pytest.raises(InvalidOptionError, match="images"):
        recalibrate_batch_norm(_model(), _images(2), images=0, progress=False)
    no_norm = create_model("unet", num_classes=3, base_width=4, batch_norm=False)
    with pytest.raises(InvalidOptionError, match="no batch norm"):
        recalibrate_batch_norm(no_norm, _images(2), progress=False)


def test_cli_writes_a_new_checkpoint_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *TINY, "--set", f"output.dir={tmp_path}", "--set", "output.name=run"]) == 0
    run = tmp_path / "run"
    assert main(["recalibrate-bn", str(run), "--images", "3", "--batch-size", "2", "--no-progress"]) == 0
    out = run / "checkpoints" / "bn_recalibrated"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["bn_recalibration"]["images"] == 3 and meta["bn_recalibration"]["split"] == "train"
    before = semseg.load_model(run)
    after = semseg.load_model(out)
    changed = [k for k, v in before.state_dict().items() if not torch.equal(v, after.state_dict()[k])]
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)
    assert main(["eval", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["recalibrate-bn", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert main(["recalibrate-bn", "camvid", "--no-progress"]) == 2
    assert "--out" in capsys.readouterr().err

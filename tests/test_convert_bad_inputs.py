"""``semseg weights convert`` refuses what does not fit, with one line naming the first
mismatching keys and exit code 2, and never runs code hidden in a pickle.

The well-formed checkpoint is made in the test: torchvision's
``fcn_resnet50(weights=None, weights_backbone=None, aux_loss=True)`` state dict (its keys and
shapes are those of torchvision's released ``fcn_resnet50_coco-1167a1af.pth``); each test
damages a copy of it.
"""

from __future__ import annotations

import os
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torchvision
from torch import Tensor

from semseg.cli import main
from semseg.convert import convert_file, read_checkpoint_file
from semseg.errors import CheckpointError, InvalidOptionError


@pytest.fixture(scope="module")
def state() -> dict[str, Tensor]:
    torch.manual_seed(0)
    model = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=True)
    return model.state_dict()


def save(tmp_path: Path, tensors: dict[str, Tensor], name: str = "ckpt.pth") -> Path:
    path = tmp_path / name
    torch.save(tensors, path)
    return path


def test_missing_key_named(state: dict[str, Tensor], tmp_path: Path) -> None:
    broken = {k: v for k, v in state.items() if k != "classifier.1.running_var"}
    with pytest.raises(CheckpointError, match=r"missing 1 \(head\.block\.1\.running_var\)"):
        convert_file(save(tmp_path, broken), "torchvision")


def test_extra_key_named(state: dict[str, Tensor], tmp_path: Path) -> None:
    extra = {**state, "classifier.5.weight": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"unexpected 1 \(classifier\.5\.weight\)"):
        convert_file(save(tmp_path, extra), "torchvision")


def test_wrong_shape_named(state: dict[str, Tensor], tmp_path: Path) -> None:
    wrong = dict(state)
    wrong["backbone.layer1.0.conv1.weight"] = torch.zeros(32, 64, 1, 1)
    with pytest.raises(CheckpointError, match=r"wrong shapes 1 \(backbone\.layer1\.0\.conv1\.weight \(32, 64, 1, 1\)"):
        convert_file(save(tmp_path, wrong), "torchvision")


def test_class_count(state: dict[str, Tensor], tmp_path: Path) -> None:
    path = save(tmp_path, state)
    with pytest.raises(
        CheckpointError, match=r"has 21 classes \(classifier\.4\.weight \(21, 512, 1, 1\)\), not the 19"
    ):
        convert_file(path, "torchvision", num_classes=19)
    # An aux classifier with another class count than the main one does not fit either.
    mixed = dict(state)
    mixed["aux_classifier.4.weight"] = torch.zeros(19, 256, 1, 1)
    mixed["aux_classifier.4.bias"] = torch.zeros(19)
    with pytest.raises(CheckpointError, match=r"wrong shapes 2 \(aux_classifier\.4\.weight \(19, 256, 1, 1\) vs"):
        convert_file(save(tmp_path, mixed, "mixed.pth"), "torchvision")


def test_other_architecture(state: dict[str, Tensor], tmp_path: Path) -> None:
    classifier = save(tmp_path, torchvision.models.resnet18().state_dict(), "resnet18.pth")
    with pytest.raises(CheckpointError, match=r"cannot tell which torchvision network.*pass --model"):
        convert_file(classifier, "torchvision")
    with pytest.raises(CheckpointError, match=r"no classifier .classifier\.4\.weight.*another network or format"):
        convert_file(classifier, "torchvision", model="fcn_resnet50")
    # A DeepLabv3 checkpoint named as FCN: every ASPP key is unexpected, the FCN head's missing.
    fcn_file = save(tmp_path, state, "fcn.pth")
    with pytest.raises(CheckpointError, match=r"does not fit deeplabv3_resnet50 .*missing \d+ \(head\.aspp"):
        convert_file(fcn_file, "torchvision", model="deeplabv3_resnet50")


def test_unknown_format_and_model(state: dict[str, Tensor], tmp_path: Path) -> None:
    path = save(tmp_path, state)
    with pytest.raises(InvalidOptionError, match="unknown checkpoint format 'caffe'; allowed: torchvision, mmseg"):
        convert_file(path, "caffe")
    with pytest.raises(InvalidOptionError, match="unknown torchvision model 'fcn_vgg16'; allowed: deeplabv3_resnet50"):
        convert_file(path, "torchvision", model="fcn_vgg16")


def test_not_a_checkpoint(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match=r"cannot read .*junk\.pth"):
        convert_file(junk, "torchvision")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        convert_file(tmp_path / "absent.pth", "torchvision")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(CheckpointError, match=r"cannot read .*bad\.safetensors"):
        convert_file(bad, "torchvision")


class _RunsCode:
    """Pickles to a call of ``os.system``: what a malicious ``.pth`` does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_code_running_pickle_refused(state: dict[str, Tensor], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": dict(state), "hook": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match=r"refusing the pickle: it would call (posix|os|nt)\.system"):
        convert_file(path, "torchvision")
    assert not marker.exists()


def test_bookkeeping_objects_read_inertly(
    state: dict[str, Tensor], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mmengine writes its message hub (``mmengine.logging.HistoryBuffer`` ...) beside the
    weights; torch's weights-only unpickler refuses it, the inert reader keeps the weights."""
    package, module = types.ModuleType("mmengine"), types.ModuleType("mmengine.logging")
    history = type("HistoryBuffer", (), {"__module__": "mmengine.logging"})
    module.HistoryBuffer = history  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mmengine", package)
    monkeypatch.setitem(sys.modules, "mmengine.logging", module)
    buffer = history()
    buffer.data = [1.0, 2.0]  # type: ignore[attr-defined]
    path = tmp_path / "framework.pth"
    torch.save({"meta": {"hub": buffer}, "state_dict": OrderedDict(state)}, path)
    monkeypatch.delitem(sys.modules, "mmengine.logging")  # as on a machine without mmengine
    monkeypatch.delitem(sys.modules, "mmengine")
    loaded = read_checkpoint_file(path)
    assert torch.equal(loaded["state_dict"]["classifier.4.weight"], state["classifier.4.weight"])
    assert loaded["meta"]["hub"].state == {"data": [1.0, 2.0]}
    assert convert_file(path, "torchvision").source_model == "fcn_resnet50"


def test_cli_one_line_exit_2(state: dict[str, Tensor], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = {k: v for k, v in state.items() if not k.startswith("backbone.layer4.2.")}
    path = save(tmp_path, broken)
    assert main(["weights", "convert", str(path), "--from", "torchvision", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "missing 18 (backbone.layer4.2.conv1.weight, backbone.layer4.2.bn1.weight," in err
    assert not (tmp_path / "o").exists()

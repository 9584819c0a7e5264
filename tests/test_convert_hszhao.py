"""``semseg weights convert --from hszhao``: PSPNet as its authors released it (hszhao/semseg).

How the fixture was made (tests/fixtures/convert/README.md): hszhao/semseg at commit 4f274c3,
fetched into a scratch folder; ``model.pspnet.PSPNet(layers=50, bins=(1, 2, 3, 6), dropout=0.1,
classes=19, zoom_factor=8, use_ppm=True, pretrained=False)``; the keys its ``tool/train.py``
saves (``module.`` + the network's keys) went to ``manifest.json``, the weights were
:func:`test_convert_fixture_weights.fixture_weights`, and its eval-mode output on a 1x3x33x41
input plus its ``aux`` head's output on layer3 (resized with ``align_corners=True`` as its
training forward does) were stored in ``outputs.safetensors``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_convert_fixture_weights import FIXTURES, fixture_weights, read_manifest, weight_sum

from semseg.convert import convert_file


def test_hszhao_pspnet_outputs_reproduced(tmp_path: Path) -> None:
    manifest = read_manifest("hszhao/pspnet50_cityscapes")
    weights = fixture_weights(manifest["shapes"], manifest["seed"])
    assert weight_sum(weights) == pytest.approx(manifest["weight_sum"], rel=1e-9), "torch's generator changed"
    path = tmp_path / "train_epoch_200.pth"
    torch.save({"epoch": 200, "state_dict": weights, "optimizer": {}}, path)
    outputs = load_file(str(FIXTURES / "hszhao" / "pspnet50_cityscapes" / "outputs.safetensors"))
    converted = convert_file(path, "hszhao")
    assert converted.source_model == "pspnet50"
    with torch.no_grad():
        got = converted.model(outputs["input"], return_aux=True)
    for ours, ref in ((got.logits, outputs["logits"]), (got.aux["aux"], outputs["aux0"])):
        assert ours.shape == ref.shape
        assert float((ours - ref).abs().max() / ref.abs().max()) <= 1e-5

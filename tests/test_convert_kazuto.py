"""``semseg weights convert --from kazuto``: DeepLab v2 from the authors' Caffe model as
kazuto1011/deeplab-pytorch ports it.

How the fixture was made (tests/fixtures/convert/README.md): kazuto1011/deeplab-pytorch at
commit 4219467, fetched into a scratch folder; ``libs.models.deeplabv2.DeepLabV2(n_classes=21,
n_blocks=[3, 4, 23, 3], atrous_rates=[6, 12, 18, 24])``; the keys its ``main.py`` saves (the MSC
wrapper's: ``base.`` + the network's keys) went to ``manifest.json``, the weights were
:func:`test_convert_fixture_weights.fixture_weights`; a random RGB image in [0, 1] (1x3x33x41) was
turned into the release's input (BGR, x255, minus the mean of ``configs/voc12.yaml``) and the
logits, resized to the input with ``align_corners=False`` as its ``demo.py`` does, were stored
with the image in ``outputs.safetensors``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_convert_fixture_weights import FIXTURES, fixture_weights, read_manifest, weight_sum

from semseg.convert import convert_file


def test_kazuto_deeplabv2_outputs_reproduced(tmp_path: Path) -> None:
    manifest = read_manifest("kazuto/deeplabv2_resnet101_voc")
    weights = fixture_weights(manifest["shapes"], manifest["seed"])
    assert weight_sum(weights) == pytest.approx(manifest["weight_sum"], rel=1e-9), "torch's generator changed"
    path = tmp_path / "deeplabv2_resnet101_msc-vocaug-20000.pth"
    torch.save(weights, path)
    outputs = load_file(str(FIXTURES / "kazuto" / "deeplabv2_resnet101_voc" / "outputs.safetensors"))
    converted = convert_file(path, "kazuto")
    model = converted.model
    assert converted.source_model == "deeplabv2_resnet101"
    # The recorded normalisation turns the 0-1 RGB image into the release's BGR 0-255 input.
    mean = torch.tensor(model.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.std).view(1, 3, 1, 1)
    with torch.no_grad():
        got = model((outputs["image"] - mean) / std)
    ref = outputs["logits"]
    assert got.shape == ref.shape
    assert float((got - ref).abs().max() / ref.abs().max()) <= 1e-5

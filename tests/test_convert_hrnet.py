"""``semseg weights convert --from hrnet``: the HRNet authors' release (HRNet-Semantic-Segmentation).

How the fixture was made (tests/fixtures/convert/README.md): HRNet/HRNet-Semantic-Segmentation
at commit 0bbb288, fetched into a scratch folder; ``lib/models/seg_hrnet.HighResolutionNet`` built
from ``experiments/cityscapes/seg_hrnet_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml``
(HRNetV2-W48, ``ALIGN_CORNERS: False``) with plain BatchNorm2d for its SyncBatchNorm; the keys of
its released files (``model.`` + the network's keys, and ``loss.criterion.weight``) went to
``manifest.json``, the weights were :func:`test_convert_fixture_weights.fixture_weights`, and the
network's logits on a 1x3x32x64 input, resized to the input as its ``tools/test.py`` does, were
stored in ``outputs.safetensors``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_convert_fixture_weights import FIXTURES, fixture_weights, read_manifest, weight_sum

from semseg.convert import convert_file


def test_hrnet_release_outputs_reproduced(tmp_path: Path) -> None:
    manifest = read_manifest("hrnet/seg_hrnet_w48_cityscapes")
    weights = fixture_weights(manifest["shapes"], manifest["seed"])
    assert weight_sum(weights) == pytest.approx(manifest["weight_sum"], rel=1e-9), "torch's generator changed"
    path = tmp_path / "hrnet_cs_8090_torch11.pth"
    torch.save(weights, path)
    outputs = load_file(str(FIXTURES / "hrnet" / "seg_hrnet_w48_cityscapes" / "outputs.safetensors"))
    converted = convert_file(path, "hrnet")
    assert converted.source_model == "hrnetv2_w48" and converted.model.model_name == "hrnetv2_w48"
    with torch.no_grad():
        got = converted.model(outputs["input"])
    ref = outputs["logits"]
    assert got.shape == ref.shape
    assert float((got - ref).abs().max() / ref.abs().max()) <= 1e-5
    # The same file read with align_corners=True (the code's default) gives other outputs.
    other = convert_file(path, "hrnet", model="hrnetv2_w48_align_corners")
    with torch.no_grad():
        assert float((other.model(outputs["input"]) - ref).abs().max() / ref.abs().max()) > 1e-3

"""``semseg weights convert --from encoding``: EncNet as released in PyTorch-Encoding.

How the fixtures were made (tests/fixtures/convert/README.md): zhanghang1989/PyTorch-Encoding at
commit ac74841, fetched into a scratch folder, its CPU ops compiled from its own
``encoding/lib/cpu`` sources with ``torch.utils.cpp_extension.load``;
``encoding.models.sseg.encnet.EncNet(nclass, "resnet50s", aux=True, se_loss=True, lateral=...,
norm_layer=encoding.nn.SyncBatchNorm)`` (150 classes without lateral as its ADE20K models, 59 with
lateral as its Pascal Context models) in eval mode; its state dict's keys went to
``manifest.json``, the weights were :func:`test_convert_fixture_weights.fixture_weights` (the
Encoding ``scale`` made negative, as trained ones are), and its three outputs (logits, SE logits,
aux logits) on a 1x3x33x41 input were stored in ``outputs.safetensors``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_convert_fixture_weights import FIXTURES, fixture_weights, read_manifest, weight_sum

from semseg.convert import convert_file


def release_weights(manifest: dict) -> dict[str, torch.Tensor]:
    weights = fixture_weights(manifest["shapes"], manifest["seed"])
    for key in weights:
        if key.endswith(".scale"):  # as the generator did: a trained scale is negative
            weights[key] = -weights[key].abs()
    return weights


@pytest.mark.parametrize(
    ("name", "source"),
    [("encnet_resnet50s_ade", "encnet_resnet50s"), ("encnet_resnet50s_pcontext_lateral", "encnet_resnet50s_lateral")],
)
def test_encoding_encnet_outputs_reproduced(name: str, source: str, tmp_path: Path) -> None:
    folder = FIXTURES / "encoding" / name
    if not folder.is_dir():
        pytest.skip(f"fixture {name} was not generated (see tests/fixtures/convert/README.md)")
    manifest = read_manifest(f"encoding/{name}")
    weights = release_weights(manifest)
    assert weight_sum(weights) == pytest.approx(manifest["weight_sum"], rel=1e-9), "torch's generator changed"
    path = tmp_path / f"{name}.pth"
    torch.save({"epoch": 120, "state_dict": weights, "best_pred": 0.0}, path)
    outputs = load_file(str(folder / "outputs.safetensors"))
    converted = convert_file(path, "encoding")
    assert converted.source_model == source
    with torch.no_grad():
        got = converted.model(outputs["input"], return_aux=True)
    for ours, ref in (
        (got.logits, outputs["logits"]),
        (got.aux["se"], outputs["se"]),
        (got.aux["aux"], outputs["aux0"]),
    ):
        assert ours.shape == ref.shape
        assert float((ours - ref).abs().max() / ref.abs().max()) <= 1e-5

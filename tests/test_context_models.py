"""Paper details of the context networks (DeepLabv3/v3+, PSPNet, EncNet, EfficientFCN, HRNetV2):
ASPP rates, multi-grid dilations, decoder stride, PPM bins, codewords, HRNet branch
resolutions, auxiliary outputs, invalid options and parameter counts against published ones."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from semseg import create_model
from semseg.errors import InvalidOptionError
from semseg.models.backbones import build_backbone
from semseg.models.backbones.hrnet import HRNet
from semseg.models.heads.aspp import ImagePooling
from semseg.models.heads.encnet import ContextEncoding, Encoding
from semseg.models.layers import SeparableConvBNReLU


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _capture(module: nn.Module, x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """The output of ``module`` while ``model`` runs on ``x``."""
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        model.eval()(x)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize(("output_stride", "rates"), [(16, (6, 12, 18)), (8, (12, 24, 36))])
def test_aspp_rates_and_branches(output_stride: int, rates: tuple[int, int, int]) -> None:
    model = create_model("deeplabv3_resnet50", num_classes=3, output_stride=output_stride)
    branches = model.head.aspp.branches
    assert model.head.rates == rates
    assert [b[0].dilation[0] for b in branches[1:4]] == list(rates)
    assert branches[0][0].kernel_size == (1, 1)
    assert isinstance(branches[4], ImagePooling)
    # Batch norm in every branch, image pooling included (DeepLabv3 Sec. 3.3).
    assert all(any(isinstance(m, nn.BatchNorm2d) for m in b.modules()) for b in branches)
    assert len(create_model("deeplabv3_resnet50", num_classes=3, image_pooling=False).head.aspp.branches) == 4


@pytest.mark.parametrize(("output_stride", "dilations"), [(16, [2, 4, 8]), (8, [4, 8, 16])])
def test_multi_grid_dilations_on_named_convs(output_stride: int, dilations: list[int]) -> None:
    model = create_model("deeplabv3_resnet101", num_classes=3, output_stride=output_stride)
    assert [block.conv2.dilation[0] for block in model.backbone.layer4] == dilations
    assert model.backbone.strides[-1] == output_stride
    plain = create_model("deeplabv3_resnet50", num_classes=3, output_stride=16, multi_grid=None)
    assert [block.conv2.dilation[0] for block in plain.backbone.layer4] == [1, 2, 2]


def test_deeplabv3plus_decoder_low_level_stride() -> None:
    model = create_model("deeplabv3plus_resnet50", num_classes=3)
    head = model.head
    assert model.backbone.strides[head.low_index] == head.low_level_stride == 4
    assert head.reduce[0].out_channels == 48 and head.reduce[0].kernel_size == (1, 1)
    x = torch.randn(1, 3, 64, 96)
    assert _capture(head.reduce, x, model).shape == (1, 48, 16, 24)
    assert _capture(head.aspp, x, model).shape[-2:] == (4, 6)  # OS16: upsampled 4x to meet it
    assert head.refine[0][0].in_channels == 256 + 48
    mobile = create_model("deeplabv3plus_mobilenetv2", num_classes=3)
    assert mobile.backbone.strides[mobile.head.low_index] == 4


def test_deeplabv3_mobilenetv2_puts_the_aspp_on_the_320_channel_block() -> None:
    model = create_model("deeplabv3_mobilenetv2", num_classes=3)
    assert model.backbone.out_channels[-1] == 320 and model.backbone.strides[-1] == 16
    aspp = model.head.aspp
    assert model.head.rates == (6, 12, 18) and len(aspp.branches) == 5  # 1x1, three atrous, image pooling
    x = torch.randn(1, 3, 64, 96)
    assert _capture(aspp, x, model).shape == (1, 256, 4, 6)
    assert model(x).shape == (1, 3, 64, 96)
    os8 = create_model("deeplabv3_mobilenetv2", num_classes=3, output_stride=8, final_conv=True)
    assert os8.head.rates == (12, 24, 36) and os8.backbone.out_channels[-1] == 1280


def test_deeplabv3plus_separable_option() -> None:
    model = create_model("deeplabv3plus_resnet50", num_classes=3, separable=True)
    atrous = list(model.head.aspp.branches)[1:4]
    assert all(isinstance(b, SeparableConvBNReLU) for b in atrous)
    assert all(isinstance(b, SeparableConvBNReLU) for b in model.head.refine)
    depthwise = atrous[0][0]
    assert depthwise.groups == depthwise.in_channels == 2048
    plain = create_model("deeplabv3plus_resnet50", num_classes=3)
    assert _params(model) < _params(plain)


def test_deeplabv3plus_decoder_convs() -> None:
    paper = create_model("deeplabv3plus_resnet50", num_classes=3, separable=True)
    light = create_model("deeplabv3plus_resnet50", num_classes=3, separable=True, decoder_convs=1)
    assert len(paper.head.refine) == 2 and len(light.head.refine) == 1
    assert light.head.refine[0][0].in_channels == 256 + 48
    assert light.head.classifier.in_channels == 256
    # smp's DeepLabV3Plus has one separable decoder conv; the count then matches to 0.1%.
    assert abs(_params(light) - 26.68e6) / 26.68e6 < 0.01
    assert light.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="decoder_convs"):
            create_model("deeplabv3plus_resnet50", num_classes=3, decoder_convs=bad)


def test_channels_last_by_default() -> None:
    fast = create_model("deeplabv3plus_resnet50", num_classes=3).eval()
    plain = create_model("deeplabv3plus_resnet50", num_classes=3, channels_last=False).eval()
    conv = fast.backbone.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert plain.backbone.conv1.weight.is_contiguous()
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out_fast, out_plain = fast(x), plain(x)
    assert out_fast.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_fast, out_plain, rtol=1e-4, atol=1e-4)


def test_pspnet_and_encnet_default_to_nchw() -> None:
    # Measured slower in NHWC on CPU (docs/bench_context.md), so NCHW unless asked.
    def nhwc(model: torch.nn.Module) -> bool:
        weight = next(p for p in model.parameters() if p.dim() == 4 and p.shape[-1] > 1)
        return weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()

    assert not nhwc(create_model("pspnet_resnet50", num_classes=3))
    assert not nhwc(create_model("encnet_resnet50", num_classes=3))
    assert nhwc(create_model("pspnet_resnet50", num_classes=3, channels_last=True))
    assert nhwc(create_model("hrnetv2_w18", num_classes=3))
    with pytest.raises(InvalidOptionError, match="channels_last"):
        create_model("hrnetv2_w18", num_classes=3, channels_last="yes")


def test_deeplabv3_matches_torchvision_size() -> None:
    ours = create_model("deeplabv3_resnet50", num_classes=21, output_stride=8, aux_loss=True, head_form="torchvision")
    ref = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, aux_loss=True)
    assert _params(ours) == _params(ref)


def test_pspnet_pyramid_bins() -> None:
    model = create_model("pspnet_resnet50", num_classes=3)
    ppm = model.head.ppm
    assert ppm.bins == (1, 2, 3, 6)
    assert ppm.reduction == 2048 // 4 and ppm.out_channels == 4096
    assert model.backbone.deep_stem and model.backbone.strides[-1] == 8
    x = torch.randn(2, 3, 64, 64)
    for stage, b in zip(ppm.stages, ppm.bins, strict=True):
        assert _capture(stage, x, model).shape == (2, 512, b, b)
    assert _capture(ppm, x, model).shape == (2, 4096, 8, 8)
    with pytest.raises(ValueError, match="bins"):
        create_model("pspnet_resnet50", num_classes=3, bins=(1, 0))
    light = create_model("pspnet_resnet50", num_classes=3, bottleneck_kernel=1)
    assert light.head.block[0].kernel_size == (1, 1) and model.head.block[0].kernel_size == (3, 3)
    assert _params(model) - _params(light) == 4096 * 512 * 8
    with pytest.raises(ValueError, match="bottleneck_kernel"):
        create_model("pspnet_resnet50", bottleneck_kernel=5)


def test_encoding_matches_the_residual_formula() -> None:
    enc = Encoding(channels=5, num_codes=3)
    x = torch.randn(2, 5, 4, 3)
    flat = x.flatten(2).transpose(1, 2)  # (N, HW, D)
    residual = flat[:, :, None, :] - enc.codewords[None, None]  # (N, HW, K, D)
    weights = torch.softmax(-enc.smoothing * residual.pow(2).sum(-1), dim=-1)
    expected = (weights.unsqueeze(-1) * residual).sum(1)
    torch.testing.assert_close(enc(x), expected, rtol=1e-4, atol=1e-5)
    assert torch.allclose(enc.assignment(flat).sum(-1), torch.ones(2, 12))


def test_encnet_codewords_se_and_gates() -> None:
    model = create_model("encnet_resnet50", num_classes=5, aux_loss=True)
    encoding = model.head.encode.encoding
    assert encoding.codewords.shape == (32, 512) and encoding.smoothing.shape == (32,)
    small = create_model("encnet_resnet50", num_classes=5, num_codes=8)
    assert small.head.encode.encoding.codewords.shape == (8, 512)
    out = model.train()(torch.randn(2, 3, 33, 41), return_aux=True)
    assert out.aux["se"].shape == (2, 5) and out.aux["aux"].shape == (2, 5, 33, 41)
    no_se = create_model("encnet_resnet50", num_classes=5, se_loss=False)
    assert "se" not in no_se(torch.randn(2, 3, 32, 32), return_aux=True).aux
    x = torch.ones(2, 16, 3, 3)
    # The paper's x * gamma form (residual=False) shows the gate's weights themselves.
    soft = ContextEncoding(16, 4, gate="softmax", residual=False).eval()(x)[0]
    torch.testing.assert_close(soft.mean(dim=1), torch.ones(2, 3, 3))  # weights average to 1
    sig = ContextEncoding(16, 4, gate="sigmoid", residual=False).eval()(x)[0]
    assert bool((sig > 0).all() and (sig < 1).all())
    with pytest.raises(ValueError, match="sigmoid, softmax"):
        create_model("encnet_resnet50", gate="tanh")


def test_efficientfcn_undilated_backbone_and_stride8_output() -> None:
    model = create_model("efficientfcn_resnet50", num_classes=3)
    assert model.backbone.strides[-3:] == (8, 16, 32)
    assert all(b.conv2.dilation == (1, 1) for b in model.backbone.layer4)
    assert model.head.decoder.num_codes == 256
    x = torch.randn(1, 3, 64, 96)
    assert _capture(model.head, x, model).shape == (1, 3, 8, 12)
    codes, _ = model.head.decoder.codewords(torch.randn(2, 512 + 1024, 2, 3))
    assert codes.shape == (2, 1024, 256)
    with pytest.raises(ValueError, match="output_stride"):
        create_model("efficientfcn_resnet50", output_stride=8)


@pytest.mark.parametrize("width", [18, 32])
def test_hrnet_branch_resolutions(width: int) -> None:
    net = HRNet(width)
    assert net.out_channels == (width, 2 * width, 4 * width, 8 * width)
    assert [len(getattr(net, f"stage{k}")) for k in (2, 3, 4)] == [1, 4, 3]
    feats = net(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in feats] == [
        (c, 64 // s, 96 // s) for c, s in zip(net.out_channels, net.strides, strict=True)
    ]
    odd = net(torch.randn(1, 3, 97, 131))  # sizes round up; no padding needed
    assert [tuple(f.shape[-2:]) for f in odd] == [(25, 33), (13, 17), (7, 9), (4, 5)]
    fuse = net.stage4[0].fuse_layers
    assert len(fuse[3][0]) == 3 and fuse[3][0][-1][0].stride == (2, 2)  # 1/4 -> 1/32: three stride-2 convs


def test_hrnetv2_head_and_invalid_options() -> None:
    model = create_model("hrnetv2_w18", num_classes=4)
    assert model.head.mix[0].in_channels == 18 * 15
    assert model(torch.randn(1, 3, 50, 70)).shape == (1, 4, 50, 70)
    with pytest.raises(ValueError, match="18, 32, 48"):
        HRNet(20)
    with pytest.raises(ValueError, match="output_stride"):
        build_backbone("hrnetv2_w18", output_stride=8)
    with pytest.raises(ValueError, match="multi_grid"):
        build_backbone("hrnetv2_w32", multi_grid=(1, 2, 4))


def test_invalid_combinations_raise_at_construction() -> None:
    with pytest.raises(ValueError, match="multi_grid"):
        create_model("deeplabv3_resnet50", multi_grid=(1, 2))
    with pytest.raises(ValueError, match="multi_grid"):
        create_model("deeplabv3plus_resnet101", multi_grid=(1, 2, 4, 8))
    with pytest.raises(ValueError, match="output_stride"):
        create_model("pspnet_resnet50", output_stride=4)
    with pytest.raises(ValueError, match="output_stride"):
        create_model("hrnetv2_w48", output_stride=8)
    with pytest.raises(InvalidOptionError, match="deep_stem=False"):
        create_model("pspnet_resnet50", backbone_weights="imagenet")


def test_aux_head_on_stage3() -> None:
    model = create_model("pspnet_resnet50", num_classes=3, aux_loss=True, deep_stem=False)
    assert model.aux_heads["aux"].index == -2 and model.aux_heads["aux"].block[0].in_channels == 1024
    out = model.train()(torch.randn(2, 3, 40, 48), return_aux=True)
    assert out.aux["aux"].shape == (2, 3, 40, 48)


PARAM_TABLE = Path(__file__).resolve().parents[1] / "benchmarks" / "param_table.py"
PUBLISHED_CASES = [
    ("pspnet_resnet101", {}, 65.6),
    ("pspnet_resnet101", {"aux_loss": True}, 68.0),  # quoted in the table's note, not an entry of its own
    ("encnet_resnet101", {"aux_loss": True}, 54.9),
    ("hrnetv2_w48", {}, 65.8),
]


@pytest.mark.parametrize(("name", "options", "millions"), PUBLISHED_CASES)
def test_parameter_counts_match_published(name: str, options: dict, millions: float) -> None:
    num_classes, published, _, table_options = runpy.run_path(str(PARAM_TABLE))["PUBLISHED"][name]
    if options == table_options:  # the figures here are the parameter table's
        assert published == millions
    count = _params(create_model(name, num_classes=num_classes, **options)) / 1e6
    assert abs(count - millions) / millions < 0.02, f"{name} {options}: {count:.2f}M vs {millions}M"


def test_channels_last_survives_pooled_branches() -> None:
    # Image pooling and the 1x1 pyramid bin come back NCHW from interpolate; the heads restore
    # NHWC so the layers after the concatenation stay channels-last.
    x = torch.randn(2, 2048, 8, 8).contiguous(memory_format=torch.channels_last)
    psp = create_model("pspnet_resnet50", num_classes=3, channels_last=True).eval()
    dl = create_model("deeplabv3_resnet50", num_classes=3).eval()
    with torch.no_grad():
        for out in (psp.head.ppm(x), dl.head.aspp(x)):
            assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()

"""Paper details of the classic networks (naive convnet, FCN, encoder-decoder/SegNet, U-Net,
Semantic FPN, DeepLab v1/v2): receptive field, strides and dilations on named layers, bilinear
init of the transposed convolutions, crop offsets of the skips, crop-and-copy, invalid options
and parameter counts against the published ones."""

from __future__ import annotations

import fnmatch
import runpy
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from semseg import create_model
from semseg.errors import InvalidOptionError
from semseg.models.backbones import build_backbone
from semseg.models.backbones.vgg import VGG16
from semseg.models.coords import bilinear_kernel, through_all
from semseg.models.heads.deeplab_v1v2 import LargeFOVHead
from semseg.models.heads.fcn_skip import FCNSkipHead
from semseg.models.heads.fpn import SemanticFPNHead
from semseg.models.heads.unet import UNetDecoder
from semseg.models.zoo.unet import mirror_pad, valid_tile

PARAM_TABLE = Path(__file__).resolve().parents[1] / "benchmarks" / "param_table.py"
CLASSIC_MODELS = ("naive_*", "fcn*_vgg16", "fcn32s_alexnet", "encdec_*", "unet*", "fpn_*", "deeplabv[12]_*")


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _support(grad: torch.Tensor) -> tuple[int, int]:
    """First and last row where a gradient map ``(..., H, W)`` is non-zero."""
    rows = grad.abs().flatten(0, -3).sum(0).sum(-1).nonzero().flatten()
    return int(rows.min()), int(rows.max())


def test_naive_convnet_receptive_field() -> None:
    model = create_model("naive_convnet", num_classes=2, width=8, depth=5).eval()
    assert model.backbone.receptive_field == 11
    assert all(m.stride == (1, 1) for m in model.modules() if isinstance(m, nn.Conv2d))
    x = torch.randn(1, 3, 31, 31, requires_grad=True)
    model(x)[0, :, 15, 15].sum().backward()
    assert _support(x.grad) == (10, 20)  # 11 rows centred on row 15
    assert _support(x.grad.transpose(-1, -2)) == (10, 20)


def test_vgg16_keys_are_torchvision_and_fc_convert() -> None:
    with torch.device("meta"):
        reference = torchvision.models.vgg16().state_dict()
        plain, fcn = VGG16("plain").state_dict(), VGG16("fcn").state_dict()
    features = {k: v.shape for k, v in reference.items() if k.startswith("features.")}
    assert {k: v.shape for k, v in plain.items()} == features
    converted = VGG16.convert_classifier(reference)
    assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in fcn.items()}
    assert fcn["fc6.weight"].shape == (4096, 512, 7, 7) and fcn["fc7.weight"].shape == (4096, 4096, 1, 1)
    assert build_backbone("vgg16").strides == (2, 4, 8, 16, 32)


@pytest.mark.parametrize(
    "layers",
    [
        [nn.Conv2d(1, 1, 3, padding=100), nn.MaxPool2d(2, 2, ceil_mode=True), nn.Conv2d(1, 1, 7)],
        [nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(3, 2, 1), nn.Conv2d(1, 1, 3, padding=4, dilation=4)],
        [nn.Conv2d(1, 1, 5, stride=2), nn.ConvTranspose2d(1, 1, 4, 2, 1), nn.ConvTranspose2d(1, 1, 4, 2)],
    ],
)
def test_coordinate_maps_match_the_receptive_field_centre(layers: list[nn.Module]) -> None:
    """The map ``scale * u + offset`` that aligns FCN's skips is the centre of each output pixel's
    support in the input (checked on stacks of conv, pool and transposed conv)."""
    for m in layers:
        if hasattr(m, "weight"):
            nn.init.constant_(m.weight, 1.0)
    net = nn.Sequential(*layers)
    scale, offset = through_all((1.0, 0.0), layers)
    x = torch.rand(1, 1, 120, 1, requires_grad=True)
    x2 = x.expand(1, 1, 120, 9)  # width 9 keeps the 2-D layers valid
    out = net(x2)
    u = out.shape[-2] // 2
    out[0, 0, u].sum().backward()
    lo, hi = _support(x.grad)
    assert 0 < lo and hi < 119, "support must lie inside the input"
    assert (lo + hi) / 2 == pytest.approx(scale * u + offset, abs=0.5 * scale)


@pytest.mark.parametrize(
    ("name", "skip_offsets", "final_offset"),
    [("fcn32s_vgg16", [], 19), ("fcn16s_vgg16", [5], 27), ("fcn8s_vgg16", [5, 9], 31), ("fcn32s_alexnet", [], 18)],
)
def test_fcn_crop_offsets_are_caffes(name: str, skip_offsets: list[int], final_offset: int) -> None:
    """With pad 100 the computed offsets are the ``Crop`` offsets of the published prototxts."""
    with torch.device("meta"):
        model = create_model(name, num_classes=21)
    assert model.head.skip_offset == skip_offsets and model.head.final_offset == final_offset
    assert model.backbone.features[0].padding == (100, 100)
    if name.endswith("vgg16"):
        with torch.device("meta"):
            same = create_model(name, num_classes=21, padding="same")
        assert same.head.skip_offset == [0] * len(skip_offsets) and same.head.final_offset == 0


def test_fcn_upsampling_is_bilinear_fixed_2x_and_fixed_final() -> None:
    with torch.device("meta"):
        model = create_model("fcn8s_vgg16", num_classes=4)
        learned = create_model("fcn8s_vgg16", num_classes=4, learn_upsampling=True)
    assert model.head.skip_index == [4, 3]  # pool4, pool3 (feature 0 is the input image)
    assert [up.kernel_size for up in model.head.ups] == [(4, 4), (4, 4)]
    # The released nets fix the 2x deconvs (lr_mult 0): buffers under the same keys as the
    # learned option's parameters, so checkpoints of either form load into the other.
    assert all(up.stride == (2, 2) and not up.weight.requires_grad for up in model.head.ups)
    assert not any(n.startswith("head.ups.") for n, _ in model.named_parameters())
    assert all(up.weight.requires_grad for up in learned.head.ups)
    assert set(model.state_dict()) == set(learned.state_dict())
    # The final x8 upsampling is a buffer (fixed, not in the state dict), as the paper fixes it.
    assert "head.final_weight" not in model.state_dict()
    assert model.head.final_weight.shape == (4, 1, 16, 16) and model.head.final_stride == 8
    real = create_model("fcn8s_vgg16", num_classes=4, padding="same")
    kernel = bilinear_kernel(4)
    for up in real.head.ups:
        w = up.weight.detach()
        for i in range(4):
            for j in range(4):
                assert torch.equal(w[i, j], kernel if i == j else torch.zeros_like(kernel))
    # Bilinear: a ramp stays a ramp (slope halved) away from the borders.
    ramp = torch.arange(8.0).view(1, 1, 8, 1).expand(1, 4, 8, 8)
    out = real.head.ups[0](ramp)
    assert torch.allclose(out[0, 0, 3:13, 5].diff(), torch.full((9,), 0.5))


@pytest.mark.parametrize("padding", ["paper", "same"])
def test_fcn8s_any_size_returns_input_size(padding: str) -> None:
    model = create_model("fcn8s_vgg16", num_classes=3, padding=padding).eval()
    with torch.no_grad():
        for size in [(33, 47), (40, 32)]:
            assert model(torch.randn(1, 3, *size)).shape == (1, 3, *size)


def test_encdec_unpooling_uses_indices() -> None:
    model = create_model("encdec_vgg16", num_classes=3).eval()
    x = torch.randn(1, 3, 45, 37)
    with torch.no_grad():
        feats = model.backbone(x)
        assert model(x).shape == (1, 3, 45, 37)  # odd sizes: each unpooling restores its pool's input size
    # The decoder's features: the input, the five pools' indices, the last pooled map.
    assert feats[0] is x and len(feats) == len(model.backbone.out_channels) == len(model.backbone.strides) == 7
    assert [f.dtype for f in feats[1:6]] == [torch.int64] * 5 and feats[-1].dtype == torch.float32
    assert [tuple(f.shape[1:]) for f in feats[1:]] == [
        (64, 22, 18), (128, 11, 9), (256, 5, 4), (512, 2, 2), (512, 1, 1), (512, 1, 1)
    ]  # fmt: skip
    stage = model.head.stages[0]
    seen: list[torch.Tensor] = []
    stage.convs.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    unpooled = seen[0]
    assert unpooled.shape[-2:] == (4, 4)
    # Each 2x2 window holds its value at the encoder's argmax and zeros elsewhere.
    windows = unpooled.unfold(-2, 2, 2).unfold(-2, 2, 2).reshape(*unpooled.shape[:2], 2, 2, 4)
    assert ((windows != 0).sum(-1) <= 1).all()
    assert _params(create_model("encdec_vgg16", num_classes=3, upsample="bilinear")) < _params(
        create_model("encdec_vgg16", num_classes=3, upsample="deconv")
    )


def test_encdec_encoder_has_vgg16_bn_keys() -> None:
    with torch.device("meta"):
        reference = torchvision.models.vgg16_bn().features.state_dict()
        ours = create_model("encdec_vgg16", num_classes=3).backbone.features.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}


def test_fcn_alexnet_is_caffes_and_any_size_works() -> None:
    model = create_model("fcn32s_alexnet", num_classes=3).eval()
    convs = [m for m in model.backbone.features if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2] and [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.backbone.features) == 2
    assert model.backbone.fc6.kernel_size == (6, 6) and model.head.final_weight.shape[-1] == 63
    with torch.no_grad():
        for size in [(1, 1), (31, 64), (97, 50)]:
            assert model(torch.randn(1, 3, *size)).shape == (1, 3, *size)


def test_unet_valid_crop_and_copy() -> None:
    assert valid_tile(388, 4) == (572, 388)  # the paper's tile
    model = create_model("unet", num_classes=2, in_channels=1, padding="valid", base_width=4).eval()
    assert all(m.padding == (0, 0) for m in model.modules() if isinstance(m, nn.Conv2d))
    tile = torch.randn(1, 1, 188, 188, requires_grad=True)  # smallest tile: 188 -> 4
    out = model.head(model.backbone(tile))
    assert out.shape[-2:] == (4, 4)
    # Silence the deep path (zero up-convolutions): output pixel 0 then sees the top level's
    # crop-and-copy only, 2 + 2 convs wide, centred on tile pixel 92 = (188 - 4) / 2.
    with torch.no_grad():
        for block in model.head.blocks:
            block.up.weight.zero_()
    out = model.head(model.backbone(tile))
    out[0, :, 0, 0].sum().backward()
    assert _support(tile.grad) == (88, 96)
    assert _support(tile.grad.transpose(-1, -2)) == (88, 96)
    x = torch.randn(1, 1, 37, 29)
    with torch.no_grad():
        full = model(x)
        (th, _), (tw, _) = valid_tile(37, 4), valid_tile(29, 4)
        by_hand = model.head(model.backbone(mirror_pad(x, 92, th - 37 - 92, 92, tw - 29 - 92)))
    assert full.shape == (1, 2, 37, 29)
    assert torch.allclose(full, by_hand[..., :37, :29])


def test_unet_same_and_in_channels() -> None:
    model = create_model("unet", num_classes=2, in_channels=4, base_width=4).eval()
    assert model.backbone.stages[0][0].in_channels == 4
    assert [b.up.kernel_size for b in model.head.blocks] == [(2, 2)] * 4
    with torch.no_grad():
        assert model(torch.randn(1, 4, 37, 29)).shape == (1, 2, 37, 29)


def test_unet_decoder_over_resnet_and_bad_backbone() -> None:
    with torch.device("meta"):
        model = create_model("unet_resnet34", num_classes=3)
    assert model.backbone.strides == (2, 4, 8, 16, 32)
    blocks = model.head.blocks
    assert len(blocks) == 5 and blocks[-1].convs[0].in_channels == 32  # last block: no skip
    assert blocks[3].convs[0].in_channels == 64 + 64  # stride-2 stem concatenated
    dilated = build_backbone("resnet50", output_stride=8)
    with pytest.raises(InvalidOptionError, match=r"2, 4, 8, 8, 8.*output_stride=32"):
        UNetDecoder(dilated.out_channels, dilated.strides, 3)
    with pytest.raises(InvalidOptionError, match="deconv, bilinear"):
        create_model("unet_resnet34", upsample="nearest")


def test_semantic_fpn_structure_and_bad_backbone() -> None:
    with torch.device("meta"):
        model = create_model("fpn_resnet50", num_classes=3)
    head = model.head
    assert head.stride == 4 and [lat.in_channels for lat in head.fpn.lateral] == [256, 512, 1024, 2048]
    ups = [sum(isinstance(m, nn.Upsample) for m in h.modules()) for h in head.scale_heads]
    assert ups == [0, 1, 2, 3]
    assert all(isinstance(m, nn.GroupNorm) for h in head.scale_heads for m in h.modules() if "Norm" in type(m).__name__)
    real = create_model("fpn_resnet50", num_classes=3).eval()
    with torch.no_grad():
        assert real.head(real.backbone(torch.randn(1, 3, 64, 96))).shape == (1, 3, 16, 24)
    dilated = build_backbone("resnet50", output_stride=16)
    with pytest.raises(InvalidOptionError, match="4, 8, 16, 32"):
        SemanticFPNHead(dilated.out_channels, dilated.strides, 3)


def test_deeplabv1_largefov_layers() -> None:
    model = create_model("deeplabv1_vgg16", num_classes=21, msc=True).eval()
    f = model.backbone.features
    pools = [m for m in f if isinstance(m, nn.MaxPool2d)]
    assert [p.stride for p in pools] == [2, 2, 2, 1, 1] and all(p.kernel_size == 3 for p in pools)
    assert [f[i].dilation for i in (24, 26, 28)] == [(2, 2)] * 3  # conv5_1..conv5_3
    fc6 = model.backbone.fc6
    assert fc6.kernel_size == (3, 3) and fc6.dilation == (12, 12) and fc6.out_channels == 1024
    assert model.backbone.fc7.out_channels == 1024 and model.backbone.strides[-1] == 8
    assert [b[0].stride for b in model.head.msc.branches] == [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    assert [b[0].out_channels for b in model.head.msc.branches] == [128] * 5
    assert [b[0].in_channels for b in model.head.msc.branches] == [3, 64, 128, 256, 512]
    with torch.no_grad():
        x = torch.randn(1, 3, 65, 81)  # Caffe's rounded-up pools: 8k + 1 pixels give k + 1 (513 -> 65)
        assert model.head(model.backbone(x)).shape[-2:] == (9, 11)
        assert model(x).shape == (1, 21, 65, 81)


def test_deeplabv1_msc_checkpoints_with_the_old_keys_load() -> None:
    # The MSc branches were a module of the model ("msc.*") before they moved into the head.
    model = create_model("deeplabv1_vgg16", num_classes=3, msc=True)
    old = {k.replace("head.msc.", "msc."): v + 1 for k, v in model.state_dict().items()}
    assert "msc.branches.0.0.weight" in old and not any(k.startswith("head.msc.") for k in old)
    result = model.load_state_dict(old, strict=False)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.head.msc.branches[4][4].bias, old["msc.branches.4.4.bias"])
    assert torch.equal(model.head.fc8.weight, old["head.fc8.weight"])


def test_deeplabv2_aspp_l_sums_rates() -> None:
    model = create_model("deeplabv2_resnet50", num_classes=3).eval()
    bb = model.backbone
    assert bb.strides[-1] == 8
    assert [b.conv2.dilation[0] for b in bb.layer3][1:] == [2] * 5
    assert [b.conv2.dilation[0] for b in bb.layer4][1:] == [4, 4]
    assert [c.dilation[0] for c in model.head.branches] == [6, 12, 18, 24]
    assert all(c.kernel_size == (3, 3) and c.out_channels == 3 for c in model.head.branches)
    feats = [torch.randn(1, 2048, 5, 6)]
    with torch.no_grad():
        total = sum(c(feats[0]) for c in model.head.branches)
        assert torch.allclose(model.head(feats), total, atol=1e-6)


def test_bad_options_name_allowed_values() -> None:
    with pytest.raises(InvalidOptionError, match="unpool, deconv, bilinear"):
        create_model("encdec_vgg16", upsample="nearest")
    with pytest.raises(InvalidOptionError, match="same, valid"):
        create_model("unet", padding="full")
    with pytest.raises(InvalidOptionError, match="same, paper"):
        create_model("fcn8s_vgg16", padding="valid")
    with pytest.raises(ValueError, match="plain, fcn, deeplab"):
        VGG16("resnet")
    with pytest.raises(ValueError, match="rates"):
        create_model("deeplabv2_resnet50", rates=(6, 0))
    with torch.device("meta"):
        dilated = VGG16("deeplab")
        plain = VGG16("plain")
        with pytest.raises(InvalidOptionError, match="stride 32"):
            FCNSkipHead(dilated.out_channels, dilated.strides, 3, dilated.coords, "8s")
        with pytest.raises(InvalidOptionError, match="32s, 16s, 8s"):
            FCNSkipHead(plain.out_channels, plain.strides, 3, plain.coords, "4s")
        fcn = VGG16("fcn")  # without the input image, the head cannot crop to its size
        with pytest.raises(InvalidOptionError, match="with_input=True"):
            FCNSkipHead(fcn.out_channels, fcn.strides, 3, fcn.coords, "8s")
        with pytest.raises(InvalidOptionError, match="DeepLab-MSc reads the input image"):
            LargeFOVHead(dilated.out_channels, dilated.strides, 3, msc=True)


def _published_cases() -> list[tuple[str, int, float, dict]]:
    published = runpy.run_path(str(PARAM_TABLE))["PUBLISHED"]  # the figures the parameter table compares with
    return [
        (name, classes, millions, options)
        for name, (classes, millions, _, options) in published.items()
        if millions is not None and any(fnmatch.fnmatch(name, p) for p in CLASSIC_MODELS)
    ]


@pytest.mark.parametrize(("name", "num_classes", "millions", "options"), _published_cases())
def test_parameter_counts_match_published(name: str, num_classes: int, millions: float, options: dict) -> None:
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, **options)
    count = _params(model) / 1e6
    assert abs(count - millions) / millions < 0.02, f"{name}: {count:.2f}M vs published {millions}M"

"""The details in which each network follows the authors' released code (issue 12), each checked
on tiny inputs with random weights: output formulas, stride and dilation positions, layers that
must be there (or not), fixed weights that must get no gradient, initialisation, dropout kinds,
resize alignment; and that checkpoints saved before these defaults changed still rebuild their
network (``legacy_options``)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from semseg import SegmentationModel, create_model
from semseg.errors import InvalidOptionError
from semseg.models import legacy_options
from semseg.models.backbones import build_backbone
from semseg.models.backbones.resnet import Bottleneck, ResNet
from semseg.models.coords import bilinear_kernel
from semseg.models.heads import efficientfcn as effn_module
from semseg.models.heads.deeplabv3 import DeepLabV3Head
from semseg.models.heads.efficientfcn import EfficientFCNHead
from semseg.models.heads.encnet import ContextEncoding, EncHead
from semseg.models.heads.fcn import FCNHead
from semseg.models.heads.fcn_skip import FCNSkipHead
from semseg.models.heads.hrnet import HRNetV2Head
from semseg.models.heads.psp import PSPHead, PyramidPooling
from semseg.models.heads.unet import UNetEncoder, UpBlock
from semseg.models.layers import SeparableConvBNReLU

torch.manual_seed(0)


def _capture(module: nn.Module, run: Any, inputs: bool = False) -> Tensor:
    """The output (or first input) of ``module`` during ``run()``."""
    seen: list[Tensor] = []
    hook = module.register_forward_hook(lambda _m, i, o: seen.append(i[0] if inputs else o))
    try:
        run()
    finally:
        hook.remove()
    return seen[0]


def _randomise_bn(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    return model


class _Const(nn.Module):
    """A shortcut that returns a fixed tensor (so two blocks differ only in their main path)."""

    def __init__(self, value: Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: Tensor) -> Tensor:
        return self.value


# EncNet (PyTorch-Encoding encoding/models/sseg/encnet.py) --------------------------------------


def test_encnet_context_encoding_returns_relu_x_plus_x_gamma() -> None:
    enc = _randomise_bn(ContextEncoding(8, 4)).eval()
    x = torch.randn(2, 8, 3, 5)
    out, encoded = enc(x)
    gamma = torch.sigmoid(enc.fc(encoded))[:, :, None, None]
    torch.testing.assert_close(out, torch.relu(x + x * gamma))
    assert bool((out >= 0).all())  # the residual form ends in a ReLU
    paper = ContextEncoding(8, 4, residual=False).eval()
    paper.load_state_dict(enc.state_dict())
    torch.testing.assert_close(paper(x)[0], x * gamma)


def test_encnet_stem_lateral_and_dropout() -> None:
    with torch.device("meta"):
        model = create_model("encnet_resnet50", num_classes=5, lateral=True)
    stem = [m.out_channels for m in model.backbone.stem if isinstance(m, nn.Conv2d)]
    assert stem == [64, 64, 128] and model.backbone.layer1[0].conv1.in_channels == 128
    # The first block of a dilated stage keeps the previous rate in the release (PyTorch-Encoding).
    assert model.backbone.layer3[0].conv2.dilation == (1, 1) and model.backbone.layer4[0].conv2.dilation == (2, 2)
    # Lateral: stage 2 (512) and stage 3 (1024) reduced to 512 and fused by a 3x3 conv.
    assert [seq[0].in_channels for seq in model.head.lateral] == [512, 1024]
    assert model.head.fusion[0].in_channels == 3 * 512 and model.head.fusion[0].kernel_size == (3, 3)
    assert type(model.head.dropout) is nn.Dropout and model.align_corners
    with torch.device("meta"):
        plain = create_model("encnet_resnet50", num_classes=5)
    assert plain.head.lateral is None and plain.head.fusion is None


def test_encnet_lateral_reads_stages_2_and_3() -> None:
    head = _randomise_bn(EncHead((4, 8, 16, 32, 64), (2, 4, 8, 8, 8), 3, channels=8, num_codes=4, lateral=True))
    head.eval()
    feats = [torch.randn(1, c, 5, 5) for c in (4, 8, 16, 32, 64)]
    c2 = _capture(head.lateral[0], lambda: head(feats), inputs=True)
    c3 = _capture(head.lateral[1], lambda: head(feats), inputs=True)
    assert c2 is feats[-3] and c3 is feats[-2]
    fused = _capture(head.fusion, lambda: head(feats))
    expected = head.fusion(torch.cat([head.block(feats[-1]), head.lateral[0](c2), head.lateral[1](c3)], 1))
    torch.testing.assert_close(fused, expected)


# PSPNet (hszhao/semseg model/pspnet.py, model/resnet.py) ----------------------------------------


def test_pspnet_stem_dilation_of_every_block_and_align_corners() -> None:
    with torch.device("meta"):
        model = create_model("pspnet_resnet50", num_classes=3)
    stem = [m.out_channels for m in model.backbone.stem if isinstance(m, nn.Conv2d)]
    assert stem == [64, 64, 128]
    assert all(b.conv2.dilation == (2, 2) and b.conv2.stride == (1, 1) for b in model.backbone.layer3)
    assert all(b.conv2.dilation == (4, 4) and b.conv2.stride == (1, 1) for b in model.backbone.layer4)
    assert model.backbone.layer3[0].downsample[0].stride == (1, 1)
    assert model.align_corners and model.head.ppm.align_corners
    with torch.device("meta"):
        mmseg_like = create_model("pspnet_resnet50", num_classes=3, stem_width=32, dilate_first_block=False)
    assert mmseg_like.backbone.layer3[0].conv2.dilation == (1, 1)
    assert mmseg_like.backbone.layer4[0].conv2.dilation == (2, 2)
    assert [m.out_channels for m in mmseg_like.backbone.stem if isinstance(m, nn.Conv2d)] == [32, 32, 64]


def test_pyramid_pooling_upsamples_with_align_corners() -> None:
    ppm = _randomise_bn(PyramidPooling(8, (1, 2, 3), align_corners=True)).eval()
    x = torch.randn(1, 8, 7, 9)
    out = ppm(x)
    for i, stage in enumerate(ppm.stages):
        expected = F.interpolate(stage(x), size=(7, 9), mode="bilinear", align_corners=True)
        torch.testing.assert_close(out[:, 8 + i * ppm.reduction : 8 + (i + 1) * ppm.reduction], expected)
    off = PyramidPooling(8, (1, 2, 3), align_corners=False).eval()
    off.load_state_dict(ppm.state_dict())
    assert not torch.allclose(off(x), out)


def test_model_output_resize_follows_align_corners() -> None:
    backbone = ResNet(18, output_stride=8)
    head = PSPHead(backbone.out_channels, backbone.strides, 3, bins=(1, 2), channels=8, align_corners=True)
    model = SegmentationModel(backbone, head, num_classes=3, align_corners=True).eval()
    x = torch.randn(1, 3, 33, 41)
    logits = _capture(model.head, lambda: model(x))
    expected = F.interpolate(logits, size=(33, 41), mode="bilinear", align_corners=True)
    torch.testing.assert_close(model(x), expected)


# DeepLab v2 (released prototxt; kazuto1011/deeplab-pytorch libs/models/resnet.py) --------------


def test_deeplabv2_caffe_resnet_stride_on_first_1x1_every_block_dilated_ceil_pool() -> None:
    with torch.device("meta"):
        model = create_model("deeplabv2_resnet101", num_classes=21)
    net = model.backbone
    block = net.layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)  # MSRA: stride on the 1x1
    assert all(b.conv2.dilation == (2, 2) for b in net.layer3) and all(b.conv2.dilation == (4, 4) for b in net.layer4)
    assert net.maxpool.ceil_mode
    with torch.device("meta"):
        tv = create_model("deeplabv2_resnet101", style="pytorch", dilate_first_block=False, stem_pool_ceil=False)
    assert tv.backbone.layer2[0].conv1.stride == (1, 1) and tv.backbone.layer2[0].conv2.stride == (2, 2)
    assert tv.backbone.layer3[0].conv2.dilation == (1, 1)


def test_caffe_style_bottleneck_stride_and_ceil_pool_size() -> None:
    caffe, torch_style = Bottleneck(8, 4, 2, 1, None, "caffe"), Bottleneck(8, 4, 2, 1, None)
    assert caffe.conv1.stride == (2, 2) and caffe.conv2.stride == (1, 1)
    assert torch_style.conv1.stride == (1, 1) and torch_style.conv2.stride == (2, 2)
    torch_style.load_state_dict(caffe.state_dict())
    x = torch.randn(1, 8, 9, 9)
    ident = torch.zeros(1, 16, 5, 5)
    # Same weights, other stride position: the caffe block subsamples before the 3x3 conv.
    caffe.downsample = torch_style.downsample = _Const(ident)
    assert caffe(x).shape == torch_style(x).shape and not torch.allclose(caffe.eval()(x), torch_style.eval()(x))
    ceil = ResNet(18, stem_pool_ceil=True).eval()
    floor = ResNet(18).eval()
    x = torch.randn(1, 3, 67, 67)  # 67 -> conv 34 -> pool: ceil((34 + 2 - 3) / 2) + 1 = 18, floor 17
    assert ceil(x)[1].shape[-1] == 18 and floor(x)[1].shape[-1] == 17


# DeepLab v3 (paper Sec. 3.3; tensorflow/models research/deeplab/model.py) ----------------------


def test_deeplabv3_paper_head_has_no_conv_after_aspp() -> None:
    head = _randomise_bn(DeepLabV3Head((8, 16), (8, 16), 4, channels=8)).eval()
    assert head.block is None and head.form == "paper"
    feats = [torch.randn(1, 8, 8, 8), torch.randn(1, 16, 5, 6)]
    torch.testing.assert_close(head(feats), head.classifier(head.aspp(feats[-1])))
    with torch.device("meta"):
        model = create_model("deeplabv3_resnet50", num_classes=4)
        tv = create_model("deeplabv3_resnet50", num_classes=4, head_form="torchvision")
    assert model.head.block is None and model.head.classifier.in_channels == 256
    assert tv.head.block[0].kernel_size == (3, 3) and tv.head.aspp.project[1].p == 0.5
    with pytest.raises(ValueError, match="paper, torchvision"):
        create_model("deeplabv3_resnet50", head_form="tf")


def test_deeplabv3_torchvision_form_loads_torchvision_bit_identically() -> None:
    ref = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=3)
    _randomise_bn(ref).eval()
    ours = create_model(
        "deeplabv3_resnet50", num_classes=3, output_stride=8, multi_grid=None, head_form="torchvision"
    ).eval()
    renames = {"classifier.0.convs.": "head.aspp.branches.", "classifier.0.project.0.": "head.aspp.project.0.0."}
    renames |= {"classifier.0.project.1.": "head.aspp.project.0.1.", "classifier.1.": "head.block.0."}
    renames |= {"classifier.2.": "head.block.1.", "classifier.4.": "head.classifier.", "backbone.": "backbone."}
    state = {}
    for key, value in ref.state_dict().items():
        new = next(new + key[len(old) :] for old, new in renames.items() if key.startswith(old))
        new = new.replace("branches.4.1.", "branches.4.1.0.").replace("branches.4.2.", "branches.4.1.1.")
        state[new] = value
    ours.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, 24, 24)
    torch.testing.assert_close(ours(x), ref(x)["out"], rtol=1e-5, atol=1e-5)


# DeepLab v3+ (tensorflow/models research/deeplab/core/utils.py, feature_extractor.py) ----------


def test_separable_conv_has_relu_between_depthwise_bn_and_pointwise() -> None:
    sep = _randomise_bn(SeparableConvBNReLU(6, 5, dilation=2)).eval()
    x = torch.randn(1, 6, 7, 7)
    torch.testing.assert_close(sep(x), sep[2](torch.relu(sep[1](sep[0](x)))))
    plain = SeparableConvBNReLU(6, 5, dilation=2, depthwise_relu=False).eval()
    plain.load_state_dict(sep.state_dict())  # same keys either way
    torch.testing.assert_close(plain(x), sep[2](sep[1](sep[0](x))))
    assert not torch.allclose(plain(x), sep(x))


def test_deeplabv3plus_mobilenetv2_encoder_ends_at_320_channels() -> None:
    model = create_model("deeplabv3plus_mobilenetv2", num_classes=3).eval()
    assert model.backbone.out_channels[-1] == 320 and len(model.backbone.features) == 18
    assert not any(k.startswith("backbone.features.18.") for k in model.state_dict())
    x = torch.randn(1, 3, 33, 33)
    aspp_in = _capture(model.head.aspp, lambda: model(x), inputs=True)
    assert aspp_in.shape[1] == 320
    assert all(b.depthwise_relu for b in model.head.aspp.branches[1:4])


def test_mobilenetv2_without_final_conv_takes_imagenet_files(tmp_path: Path) -> None:
    reference = torchvision.models.mobilenet_v2()
    raw = tmp_path / "raw.pth"
    torch.save(reference.state_dict(), raw)
    path = tmp_path / f"mobilenetv2-{hashlib.sha256(raw.read_bytes()).hexdigest()[:8]}.pth"
    raw.rename(path)
    net = build_backbone("mobilenetv2", weights=path, final_conv=False)
    for key, value in net.state_dict().items():
        assert torch.equal(value, reference.state_dict()[key]), key


# DeepLab v1 (DeepLab-LargeFOV train.prototxt) ---------------------------------------------------


def test_deeplabv1_pool5a_before_fc6_and_elementwise_dropout() -> None:
    model = create_model("deeplabv1_vgg16", num_classes=3, msc=True).eval()
    vgg = model.backbone
    assert isinstance(vgg.pool5a, nn.AvgPool2d) and vgg.pool5a.stride == 1 and vgg.pool5a.count_include_pad
    x = torch.randn(1, 3, 33, 33)
    pool5 = _capture(vgg.features[vgg._pool_index[-1]], lambda: model(x))
    fc6_in = _capture(vgg.fc6, lambda: model(x), inputs=True)
    torch.testing.assert_close(fc6_in, F.avg_pool2d(pool5, 3, 1, 1))
    assert type(vgg.drop6) is nn.Dropout and type(vgg.drop7) is nn.Dropout
    branch = model.head.msc.branches[0]
    assert [type(m[1]) for m in (branch[1], branch[3])] == [nn.Dropout, nn.Dropout]
    assert {k for k in model.state_dict() if k.startswith("head.msc.branches.0.")} == {
        f"head.msc.branches.0.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
    }
    with torch.device("meta"):
        old = create_model("deeplabv1_vgg16", num_classes=3, pool5a=False)
    assert not hasattr(old.backbone, "pool5a")


# FCN (shelhamer/fcn.berkeleyvision.org voc-fcn*/net.py) ----------------------------------------

# A tiny stand-in for VGG-16's features: the input, pool1 ... pool5 and fc7 at "same" positions.
_STRIDES = (1, 2, 4, 8, 16, 32, 32)
_CHANNELS = (3, 4, 4, 5, 6, 4, 7)


def _fcn_head(**options: Any) -> FCNSkipHead:
    coords = [(float(s), (s - 1) / 2) for s in _STRIDES]
    return FCNSkipHead(_CHANNELS, _STRIDES, 3, coords, "8s", **options)


def _fcn_features() -> list[Tensor]:
    return [torch.randn(1, c, 64 // s, 64 // s) for c, s in zip(_CHANNELS, _STRIDES, strict=True)]


def test_fcn_2x_deconvs_fixed_bilinear_and_get_no_gradient() -> None:
    head = _fcn_head()
    for up in head.ups:
        assert "weight" in dict(up.named_buffers()) and "weight" not in dict(up.named_parameters())
        assert torch.equal(up.weight[0, 0], bilinear_kernel(4)) and torch.equal(up.weight[0, 1], torch.zeros(4, 4))
    before = [up.weight.clone() for up in head.ups]
    nn.init.normal_(head.score_fr.weight, std=0.01)
    opt = torch.optim.SGD(head.parameters(), lr=1.0)
    head(_fcn_features()).sum().backward()
    opt.step()
    assert all(torch.equal(a, up.weight) for a, up in zip(before, head.ups, strict=True))
    learned = _fcn_head(learn_upsampling=True)
    assert all(isinstance(up.weight, nn.Parameter) for up in learned.ups)
    with torch.device("meta"):
        model = create_model("fcn8s_vgg16", num_classes=3)
    assert not any(n.startswith("head.ups.") for n, _ in model.named_parameters())
    assert type(model.backbone.drop6) is nn.Dropout and type(model.backbone.drop7) is nn.Dropout


def test_fcn_score_layers_start_at_zero() -> None:
    head = _fcn_head()
    for score in (head.score_fr, *head.score_skips):
        assert not score.weight.any() and not score.bias.any()
    assert not head(_fcn_features()).any()


def test_fcn_at_once_scales_pool4_and_pool3() -> None:
    head = _fcn_head(at_once=True)
    feats = _fcn_features()
    pool4_in = _capture(head.score_skips[0], lambda: head(feats), inputs=True)
    pool3_in = _capture(head.score_skips[1], lambda: head(feats), inputs=True)
    torch.testing.assert_close(pool4_in, feats[4] * 0.01)
    torch.testing.assert_close(pool3_in, feats[3] * 0.0001)
    staged = _fcn_head()
    torch.testing.assert_close(_capture(staged.score_skips[0], lambda: staged(feats), inputs=True), feats[4])


# HRNetV2 (HRNet/HRNet-Semantic-Segmentation lib/models/seg_hrnet.py) ----------------------------


def test_hrnet_head_conv_has_bias_and_resize_option() -> None:
    with torch.device("meta"):
        model = create_model("hrnetv2_w18", num_classes=19)
    assert "head.mix.0.bias" in model.state_dict()
    # The released experiments resize with align_corners=False (MODEL.ALIGN_CORNERS: False).
    assert not (model.align_corners or model.head.align_corners or model.backbone.stage2[0].align_corners)
    assert "mix.0.bias" not in HRNetV2Head((4, 8), (4, 8), 3, bias=False).state_dict()
    head = _randomise_bn(HRNetV2Head((4, 8), (4, 8), 3, align_corners=True)).eval()
    feats = [torch.randn(1, 4, 9, 11), torch.randn(1, 8, 5, 6)]
    up = F.interpolate(feats[1], size=(9, 11), mode="bilinear", align_corners=True)
    torch.testing.assert_close(head(feats), head.classifier(head.mix(torch.cat([feats[0], up], 1))))


# U-Net (the released Caffe model, phseg_v5-train.prototxt) --------------------------------------


def test_unet_dropout_on_last_two_levels_in_place() -> None:
    enc = UNetEncoder(1, (4, 8, 16, 32, 64)).train()
    assert type(enc.dropout) is nn.Dropout and enc.dropout_levels == 2
    feats = enc(torch.rand(1, 1, 32, 32) + 1.0)
    zero_fraction = [float((f == 0).float().mean()) for f in feats]
    assert zero_fraction[-1] > 0.3 and zero_fraction[-2] > 0.3  # dropped (ReLU zeros are rarer)
    # The next level pools the dropped-out map: its input is the same tensor as the skip.
    assert enc.eval()(torch.ones(1, 1, 16, 16))[-2].shape[1] == 32
    paper = UNetEncoder(1, (4, 8, 16, 32, 64), dropout_levels=1).train()
    paper.load_state_dict(enc.state_dict())
    torch.manual_seed(1)
    feats = paper(torch.rand(1, 1, 32, 32) + 1.0)
    assert float((feats[-2] == 0).float().mean()) < float((feats[-1] == 0).float().mean())


def test_unet_up_convolution_is_followed_by_relu() -> None:
    block = UpBlock(8, 4, 4, "deconv", "same", batch_norm=False, upconv_relu=True).eval()
    x, skip = torch.randn(1, 8, 3, 3), torch.randn(1, 4, 6, 6)
    conv_in = _capture(block.convs[0], lambda: block(x, skip), inputs=True)
    torch.testing.assert_close(conv_in[:, 4:], torch.relu(block.up(x)))
    assert bool((conv_in[:, 4:] >= 0).all())
    plain = UpBlock(8, 4, 4, "deconv", "same", batch_norm=False, upconv_relu=False).eval()
    plain.load_state_dict(block.state_dict())
    assert bool((_capture(plain.convs[0], lambda: plain(x, skip), inputs=True)[:, 4:] < 0).any())
    with torch.device("meta"):
        unet = create_model("unet", num_classes=2)
    assert all(b.upconv_relu for b in unet.head.blocks)


# U-Net in mmsegmentation's form (unet-s5-d16: configs/_base_/models/fcn_unet_s5-d16.py) ---------

MMSEG_UNET = {"batch_norm": True, "dropout_levels": 0, "upsample": "interp", "head_form": "fcn", "aux_loss": True}


def test_unet_mmseg_form_padded_bn_levels_and_heads() -> None:
    """Padded 3x3 conv-BN-ReLU without bias, no drop-out; the backbone gives the expanding path's
    maps finest first at strides 1 ... 16; the FCN head (base_width channels) reads the finest, the
    FCN aux head the stride-2 one."""
    model = create_model("unet", num_classes=3, base_width=4, **MMSEG_UNET).eval()
    x = torch.randn(1, 3, 32, 48)
    feats = model.backbone(x)
    assert [f.shape[1:] for f in feats] == [(4 * 2**i, 32 >> i, 48 >> i) for i in range(5)]
    convs = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.bias is None and m.padding == (m.kernel_size[0] // 2,) * 2 for m in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.backbone.modules()) == len(convs)
    assert model.backbone.encoder.dropout_levels == 0
    head, aux = model.head, model.aux_heads["aux"]
    assert isinstance(head, FCNHead) and isinstance(aux, FCNHead)
    assert (head.index, head.block[0].in_channels, head.block[0].out_channels) == (0, 4, 4)
    assert (aux.index, aux.block[0].in_channels, aux.block[0].out_channels) == (1, 8, 4)
    out = model(x, return_aux=True)
    torch.testing.assert_close(out.logits, head(feats))  # already at the input size
    torch.testing.assert_close(out.aux["aux"], F.interpolate(aux(feats), size=(32, 48), mode="bilinear"))


def test_unet_interp_upsampling_resizes_then_projects() -> None:
    """mmseg's InterpConv: 2x bilinear (align_corners=False), then 1x1 conv-BN-ReLU to the block's
    width; the skip comes first in the concatenation."""
    block = UpBlock(8, 4, 4, "interp", "same", batch_norm=True).eval()
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):  # not an identity
            nn.init.uniform_(m.weight, 0.5, 1.5), nn.init.normal_(m.bias), nn.init.normal_(m.running_mean)
    x, skip = torch.randn(1, 8, 3, 5), torch.randn(1, 4, 6, 10)
    conv_in = _capture(block.convs[0], lambda: block(x, skip), inputs=True)
    assert conv_in.shape[1] == 8 and block.project[0].kernel_size == (1, 1)
    torch.testing.assert_close(conv_in[:, :4], skip)
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(conv_in[:, 4:], block.project(up))
    assert not torch.allclose(conv_in[:, 4:], F.interpolate(block.project(x), scale_factor=2, mode="bilinear"))
    plain = UpBlock(8, 4, 4, "interp", "same", batch_norm=False)
    assert [type(m) for m in plain.project] == [nn.Conv2d, nn.ReLU] and plain.project[0].bias is not None


def test_unet_heads_need_same_padding_and_known_forms() -> None:
    with pytest.raises(InvalidOptionError, match="padding='same'"):
        create_model("unet", padding="valid", head_form="fcn")
    with pytest.raises(InvalidOptionError, match="head_form='mmseg'; allowed"):
        create_model("unet", head_form="mmseg")
    # The paper's head with an aux head: the 1x1 classifier on the finest map.
    model = create_model("unet", num_classes=2, base_width=4, aux_loss=True).eval()
    x = torch.randn(1, 3, 16, 16)
    torch.testing.assert_close(model(x), model.head.classifier(model.backbone(x)[0]))
    assert model.head.classifier.kernel_size == (1, 1) and "aux" in model.aux_heads


# Semantic FPN (detectron2 SemSegFPNHead) and EfficientFCN (jianbo909/efficientFCN) --------------


def test_semantic_fpn_has_no_dropout_by_default() -> None:
    with torch.device("meta"):
        d2 = create_model("fpn_resnet50", num_classes=3)
        mm = create_model("fpn_resnet50", num_classes=3, dropout=0.1)
    assert not any(isinstance(m, nn.Dropout | nn.Dropout2d) for m in d2.modules())
    assert isinstance(mm.head.dropout, nn.Dropout2d) and mm.head.dropout.p == 0.1


def test_semantic_fpn_norm_in_scale_stages() -> None:
    """GroupNorm(32) in every scale stage by default (the paper, detectron2); BatchNorm with
    ``norm="batch"`` (mmsegmentation's FPNHead); anything else is refused naming the choices."""
    with torch.device("meta"):
        paper = create_model("fpn_resnet50", num_classes=3)
        mmseg = create_model("fpn_resnet50", num_classes=3, norm="batch")
    stages = [stage for head in paper.head.scale_heads for stage in head]
    assert len(stages) == 7 and all(isinstance(s[1], nn.GroupNorm) and s[1].num_groups == 32 for s in stages)
    stages = [stage for head in mmseg.head.scale_heads for stage in head]
    assert len(stages) == 7 and all(isinstance(s[1], nn.BatchNorm2d) for s in stages)
    assert not any(isinstance(m, nn.GroupNorm) for m in mmseg.modules())
    with pytest.raises(InvalidOptionError, match="allowed: group, batch"):
        create_model("fpn_resnet50", num_classes=3, norm="layer")


def test_efficientfcn_resnet_d_backbone_and_aligned_resizes(monkeypatch: pytest.MonkeyPatch) -> None:
    with torch.device("meta"):
        model = create_model("efficientfcn_resnet50", num_classes=3)
    net = model.backbone
    assert [m.out_channels for m in net.stem if isinstance(m, nn.Conv2d)] == [32, 32, 64]
    down = net.layer2[0].downsample
    assert isinstance(down[0], nn.AvgPool2d) and down[0].ceil_mode and not down[0].count_include_pad
    assert down[1].stride == (1, 1) and net.layer2[0].conv2.stride == (2, 2)
    assert not model.align_corners and model.head.align_corners  # the release's up_kwargs: False
    head = EfficientFCNHead((8, 16, 32), (8, 16, 32), 3, fuse_channels=8, channels=8, num_codes=4).eval()
    calls: list[bool] = []
    original = effn_module.resize

    def spy(t: Tensor, size: Any, align_corners: bool = False) -> Tensor:
        calls.append(align_corners)
        return original(t, size, align_corners)

    monkeypatch.setattr(effn_module, "resize", spy)
    head([torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4), torch.randn(1, 32, 2, 2)])
    assert calls == [True] * 4
    with pytest.raises(ValueError, match="deep_stem=False"):
        create_model("efficientfcn_resnet50", backbone_weights="imagenet")


# Checkpoints written before the defaults changed ------------------------------------------------


def test_changed_options_are_recorded_and_old_checkpoints_rebuild_the_old_network() -> None:
    with torch.device("meta"):
        new = create_model("deeplabv3plus_mobilenetv2", num_classes=3, output_stride=16)
    assert new.model_options == {"output_stride": 16, "depthwise_relu": True, "final_conv": False}
    # A meta.json written before held only the options the user gave.
    old_options = legacy_options("deeplabv3plus_mobilenetv2", {"output_stride": 16})
    assert old_options == {"output_stride": 16, "depthwise_relu": False, "final_conv": True}
    with torch.device("meta"):
        old = create_model("deeplabv3plus_mobilenetv2", num_classes=3, **old_options)
    assert old.backbone.out_channels[-1] == 1280 and not old.head.aspp.branches[1].depthwise_relu
    # ... and a recorded meta.json is left as it is.
    assert legacy_options("deeplabv3plus_mobilenetv2", new.model_options) == new.model_options
    for name, given in [("pspnet_resnet50", {}), ("deeplabv3_resnet50", {"aux_loss": True})]:
        with torch.device("meta"):
            recorded = create_model(name, num_classes=3, **given).model_options
            rebuilt = create_model(name, num_classes=3, **legacy_options(name, given))
        assert set(recorded) > set(given) and legacy_options(name, recorded) == recorded
        assert rebuilt.model_options == legacy_options(name, given)
    with torch.device("meta"):
        assert create_model("fcn_resnet18_d8", num_classes=3).model_options == {}


# The forms mmsegmentation's checkpoints need (used by semseg.convert) ---------------------------


def test_mmseg_forms_fcn_concat_head_aspp_3x3_projection_and_v1c_stems() -> None:
    head = _randomise_bn(FCNHead((8, 16), (8, 8), 3, channels=4, num_convs=2, concat_input=True)).eval()
    x = torch.randn(1, 16, 5, 5)
    expected = head.classifier(head.concat(torch.cat([x, head.convs(x)], dim=1)))
    torch.testing.assert_close(head([torch.randn(1, 8, 5, 5), x]), expected)
    assert {k.split(".")[0] for k in head.state_dict()} == {"convs", "concat", "classifier"}
    assert {k.split(".")[0] for k in FCNHead((8, 16), (8, 8), 3).state_dict()} == {"block", "classifier"}
    v1c = {"deep_stem": True, "stem_width": 32}
    with torch.device("meta"):
        dl = create_model("deeplabv3_resnet50", num_classes=3, channels=512, project_kernel=3, **v1c)
        fpn = create_model("fpn_resnet50", num_classes=3, **v1c)
    assert dl.head.aspp.project[0][0].kernel_size == (3, 3) and dl.head.aspp.project[0][0].out_channels == 512
    for model in (dl, fpn):
        assert [m.out_channels for m in model.backbone.stem if isinstance(m, nn.Conv2d)] == [32, 32, 64]
    with pytest.raises(ValueError, match="deep_stem=False"):
        create_model("deeplabv3_resnet50", deep_stem=True, backbone_weights="imagenet")

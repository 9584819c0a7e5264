"""semseg.summary and `semseg summary`: parameters, FLOPs and receptive fields against known numbers."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from semseg.cli import main
from semseg.models import SegmentationModel, create_model
from semseg.summary import StageRow, format_summary, summarize


def _total(rows: list[StageRow], what: str) -> int:
    return sum(getattr(r, what) for r in rows)


@pytest.fixture(scope="module")
def fcn50() -> tuple[SegmentationModel, list[StageRow]]:
    model = create_model("fcn_resnet50_d8", num_classes=21, aux_loss=True)
    return model, summarize(model, (64, 64))


def test_parameter_totals_are_the_models(fcn50: tuple[SegmentationModel, list[StageRow]]) -> None:
    model, rows = fcn50
    assert _total(rows, "params") == sum(p.numel() for p in model.parameters())
    by_name = {r.name: r for r in rows}
    assert by_name["head"].params == sum(p.numel() for p in model.head.parameters())
    assert by_name["aux_heads.aux"].params == sum(p.numel() for p in model.aux_heads.parameters())
    # ResNet-50: 25.6M parameters with the ImageNet classifier (fc: 2048 x 1000 + 1000), 23.5M in
    # the convolutional trunk, which is what the backbone rows hold.
    trunk = sum(r.params for r in rows if r.name.startswith("backbone"))
    assert trunk == 23_508_032
    assert sum(p.numel() for p in torchvision.models.resnet50().parameters()) == 25_557_032 == trunk + 2_049_000


def test_flops_equal_torchvisions_fcn_resnet50() -> None:
    """The same counter on torchvision's FCN-ResNet50 (dilated, output stride 8, no aux head) at
    the same size: the two networks are the same convolutions, so the counts are equal exactly
    (the counter counts 2 FLOPs per multiply-add of conv and matmul; BN, ReLU, interpolation: 0)."""
    ours = create_model("fcn_resnet50_d8", num_classes=21)
    rows = summarize(ours, (64, 96))
    reference = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=False)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        reference.eval()(torch.zeros(1, 3, 64, 96))
    assert abs(_total(rows, "flops") - counter.get_total_flops()) <= 0.01 * counter.get_total_flops()
    assert _total(rows, "flops") == counter.get_total_flops()
    assert _total(rows, "params") == sum(p.numel() for p in reference.parameters())


def test_resnet50_receptive_fields_by_hand(fcn50: tuple[SegmentationModel, list[StageRow]]) -> None:
    """ResNet v1.5 (stride on the 3x3 conv), RF r and stride j, r += (k - 1) * d * j:
    stem 7x7/2: 7 (j 2); maxpool 3/2: 11 (j 4); layer1, three 3x3: 35; layer2, first 3x3/2 then
    three: 43 (j 8) + 48 = 91; layer3 at output stride 8 keeps j 8: first 3x3 at dilation 1, five
    at dilation 2: 107 + 160 = 267; layer4: first at 2, two at 4: 299 + 128 = 427 (the same as the
    undilated ResNet-50's 427 at stride 32: dilation keeps the receptive field). FCN head 3x3: 443;
    aux FCN head on layer3: 283."""
    _, rows = fcn50
    by_name = {r.name: r for r in rows}
    expected = {
        "backbone[0]": (7, 2),
        "backbone[1]": (35, 4),
        "backbone[2]": (91, 8),
        "backbone[3]": (267, 8),
        "backbone[4]": (427, 8),
        "head": (443, 8),
        "aux_heads.aux": (283, 8),
    }
    for name, (rf, stride) in expected.items():
        assert by_name[name].receptive_field == (rf, rf), name
        assert by_name[name].stride == (stride, stride), name
    assert by_name["backbone[3]"].dilations == (1, 2)
    assert by_name["backbone[4]"].dilations == (1, 2, 4)
    assert by_name["head"].shape == (1, 21, 8, 8)
    # Undilated (output stride 32): the same 427 at stride 32; the head's 3x3 then adds 2 x 32.
    rows32 = summarize(create_model("fcn_resnet50_d8", output_stride=32), 64)
    assert [(r.receptive_field[0], r.stride[0]) for r in rows32[3:]] == [(267, 16), (427, 32), (491, 32)]


def test_naive_convnet_receptive_field() -> None:
    """Eight 3x3 convs at stride 1: 1 + 8 * 2 = 17 pixels; the 1x1 classifier adds nothing."""
    rows = summarize(create_model("naive_convnet", num_classes=3, width=8), (24, 20))
    assert [r.receptive_field for r in rows] == [(17, 17), (17, 17)]
    assert rows[-1].shape == (1, 3, 24, 20)


class _TwoConvs(nn.Module):
    """conv 3x3 stride 2, then conv 3x3 dilation 2, in two branches joined by a sum."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.skip = nn.Conv2d(4, 4, 1)
        self.out_channels, self.strides = (4, 4), (2, 2)

    def forward(self, x: Tensor) -> list[Tensor]:
        y = self.a(x)
        return [y, self.b(y) + self.skip(y)]


class _Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 2, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.conv(features[-1])


def test_dilated_example_by_hand() -> None:
    """3x3 stride 2: r = 3, j = 2. 3x3 dilation 2 on it: 3 + (3 - 1) * 2 * 2 = 11. The 1x1 skip
    branch keeps 3; the sum takes the maximum over the branches: 11."""
    model = SegmentationModel(_TwoConvs(), _Classifier(), num_classes=2)
    rows = summarize(model, 16)
    assert [(r.name, r.receptive_field, r.stride) for r in rows] == [
        ("backbone[0]", (3, 3), (2, 2)),
        ("backbone[1]", (11, 11), (2, 2)),
        ("head", (11, 11), (2, 2)),
    ]
    assert rows[1].dilations == (1, 2)
    assert rows[0].params == 3 * 4 * 9 + 4
    # FLOPs: 2 x multiply-adds of each conv at its output size (8x8).
    assert rows[0].flops == 2 * 64 * 4 * 3 * 9
    assert rows[1].flops == 2 * 64 * (4 * 4 * 9 + 4 * 4)


def test_global_pooling_is_global_and_upsampling_counts() -> None:
    """PSPNet's pyramid pooling reaches the whole image; FCN-32s' 64x64/32 transposed conv adds one
    stride-32 step to VGG's 404 (pool5 212 + fc6 7x7: 6 x 32)."""
    rows = summarize(create_model("pspnet_resnet50", num_classes=2, deep_stem=False), (64, 64))
    assert math.isinf(next(r for r in rows if r.name == "head").receptive_field[0])
    assert "global" in format_summary(rows)
    rows = summarize(create_model("fcn32s_vgg16", num_classes=2, padding="same"), (64, 64))
    head = next(r for r in rows if r.name == "head")
    assert head.receptive_field == (436, 436)
    assert head.stride == (1, 1)


def test_families_sum_up_and_strides_match_the_maps() -> None:
    """Over a few families: rows sum to the model's parameters, and with "same" padding every
    map's stride times its size is the input size (DeepLabv3+'s decoder is back at stride 4 after
    the global image pooling; EfficientFCN's codeword assembly at stride 8)."""
    for name in ("deeplabv3plus_mobilenetv2", "efficientfcn_resnet50", "hrnetv2_w18", "unet", "encdec_vgg16"):
        model = create_model(name, num_classes=3)
        rows = summarize(model, (64, 96))
        assert _total(rows, "params") == sum(p.numel() for p in model.parameters()), name
        assert {r.name for r in rows} >= {"backbone[0]", "head"}, name
        for r in rows:
            if r.stride is not None:
                assert (r.stride[0] * r.shape[-2], r.stride[1] * r.shape[-1]) == (64, 96), (name, r)
    head = next(r for r in summarize(create_model("deeplabv3plus_mobilenetv2"), 64) if r.name == "head")
    assert head.stride == (4, 4) and math.isinf(head.receptive_field[0])


def test_format_summary_has_a_total_and_says_what_flops_are(fcn50: tuple[SegmentationModel, list[StageRow]]) -> None:
    model, rows = fcn50
    text = format_summary(rows)
    assert f"parameters: {sum(p.numel() for p in model.parameters()):,}" in text
    assert "2 x multiply-adds" in text
    assert "without the aux heads" in text
    assert any(line.startswith("total") for line in text.splitlines())


def test_summarize_refuses_a_plain_module() -> None:
    from semseg.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError):
        summarize(nn.Conv2d(3, 3, 1), 8)


def test_cli_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "naive_convnet", "--size", "32x24", "--num-classes", "5", "--set-option", "depth=2"]) == 0
    out = capsys.readouterr().out
    assert "naive_convnet: input 1x3x32x24, 5 classes" in out
    assert "backbone[0]" in out and "head" in out
    head = next(line for line in out.splitlines() if line.startswith("head")).split()
    assert head[:6] == ["head", "PixelClassifier", "1x5x32x24", "1", "1", "5"]  # depth 2: RF 1 + 2 * 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summary", "no_such_model"], "unknown model"),
        (["summary", "naive_convnet", "--set-option", "nope=1"], "no option nope"),
        (["summary", "naive_convnet", "--set-option", "depth"], "KEY=VALUE"),
        (["summary", "naive_convnet", "--size", "0x4"], "--size"),
        (["summary", "encdec_vgg16", "--size", "1x1"], "cannot run on a 1x1 input"),
    ],
)
def test_cli_summary_errors_in_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1

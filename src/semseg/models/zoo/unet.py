"""U-Net (Ronneberger, Fischer and Brox, https://arxiv.org/abs/1505.04597) and a U-Net decoder on
a ResNet-34 encoder.

``unet`` is the paper's network: 64-128-256-512-1024 channels, conv3x3-ReLU pairs, 2x2 max-pools,
2x2 up-convolutions, concatenated skips and a 1x1 classifier (31.0M parameters with
``in_channels=1`` and 2 classes). ``padding="valid"`` reproduces the paper's unpadded
convolutions and crop-and-copy, and its overlap-tile strategy: the input is extended by mirroring
(92 pixels of context on the top/left, and as many on the bottom/right as make every pooled map
even) so that the 184-pixel smaller output covers exactly the input, for any input size.

mmsegmentation's ``unet-s5-d16`` models (``fcn_unet_s5-d16``: Cityscapes, DRIVE, STARE,
CHASE_DB1, HRF) are ``unet(batch_norm=True, dropout_levels=0, upsample="interp",
head_form="fcn", aux_loss=True)``: padded 3x3 conv-BN-ReLU pairs, max-pools, bilinear 2x + 1x1
conv-BN-ReLU up-sampling, an FCN head (3x3 conv-BN-ReLU of ``base_width`` channels, dropout 0.1,
1x1 classifier) on the full-resolution map and an FCN auxiliary head on the stride-2 map of the
expanding path. ``semseg weights convert --from mmseg`` loads their checkpoints.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from semseg.constants import IMAGENET_MEAN, IMAGENET_STD
from semseg.errors import InvalidOptionError
from semseg.models.backbones import build_backbone
from semseg.models.heads.fcn import FCNHead
from semseg.models.heads.unet import PADDINGS, LevelClassifier, UNetBody, UNetDecoder, UNetEncoder, check_choice
from semseg.models.registry import register_model
from semseg.models.segmentor import SegmentationModel, SegmentationOutput
from semseg.models.zoo.common import WeightsArg

HEAD_FORMS = ("paper", "fcn")


def valid_tile(size: int, depth: int) -> tuple[int, int]:
    """``(input, output)`` sizes of the smallest valid-padding tile whose output covers ``size``.

    Each pooled map must be even: going down, ``s -> (s - 4) / 2``; the bottom ``m`` then gives an
    input of ``m -> 2m + 4`` per level and an output of ``m - 4 -> 2(m - 4) - 4 ...``.
    """
    m = 5
    while True:
        inp, out = m, m - 4
        for _ in range(depth):
            inp, out = 2 * inp + 4, 2 * out - 4
        if out >= size:
            return inp, out
        m += 1


def mirror_pad(x: Tensor, top: int, bottom: int, left: int, right: int) -> Tensor:
    """Reflect-pad by any amount (repeating the reflection when the pad exceeds the image)."""
    while top or bottom or left or right:
        h, w = x.shape[-2:]
        t, b = min(top, h - 1), min(bottom, h - 1)
        lf, r = min(left, w - 1), min(right, w - 1)
        x = F.pad(x, (lf, r, t, b), mode="reflect")
        top, bottom, left, right = top - t, bottom - b, left - lf, right - r
    return x


class UNet(SegmentationModel):
    """Encoder + decoder; with ``padding="valid"`` the input is mirror-padded to a valid tile and
    the output cropped back, so the output always has the input's size.

    The one network with its own ``forward``, and only for ``padding="valid"``: the paper's
    overlap-tile strategy transforms the whole network's input (mirrored into a larger tile before
    the contracting path) and output (cropped after the expanding path). Passing the untouched
    input through the feature list instead would have the encoder return it beside its levels and
    the decoder single it out, in a decoder that also serves ResNet encoders. With
    ``padding="same"`` the shared :meth:`SegmentationModel.forward` runs.

    The backbone is the contracting path and the head the expanding path (the paper's form), or,
    with ``head_form="fcn"`` or ``aux_loss``, the backbone is both paths (:class:`UNetBody`) and
    the heads read its maps.

    Shape:
        ``(N, in_channels, H, W)`` -> ``(N, num_classes, H, W)``.
    """

    def __init__(
        self,
        backbone: UNetEncoder | UNetBody,
        head: nn.Module,
        num_classes: int,
        valid: bool,
        in_channels: int,
        aux_heads: dict[str, nn.Module] | None = None,
    ) -> None:
        rgb = in_channels == 3
        super().__init__(
            backbone,
            head,
            aux_heads,
            num_classes=num_classes,
            mean=IMAGENET_MEAN if rgb else (0.5,) * in_channels,
            std=IMAGENET_STD if rgb else (0.5,) * in_channels,
        )
        self.valid = valid
        self.depth = len(backbone.out_channels) - 1

    def forward(self, x: Tensor, return_aux: bool = False) -> Tensor | SegmentationOutput:
        if not self.valid:
            return super().forward(x, return_aux)
        h, w = x.shape[-2:]
        (tile_h, out_h), (tile_w, _out_w) = valid_tile(h, self.depth), valid_tile(w, self.depth)
        margin = (tile_h - out_h) // 2  # context lost on each side (92 for the paper's depth 4)
        tile = mirror_pad(x, margin, tile_h - h - margin, margin, tile_w - w - margin)
        logits = self.head(self.backbone(tile))[..., :h, :w]
        return SegmentationOutput(logits, {}) if return_aux else logits


@register_model
def unet(
    *,
    num_classes: int = 2,
    in_channels: int = 3,
    padding: str = "same",
    batch_norm: bool = False,
    base_width: int = 64,
    dropout_levels: int = 2,
    upconv_relu: bool = True,
    upsample: str = "deconv",
    head_form: str = "paper",
    aux_loss: bool = False,
) -> UNet:
    """The original U-Net (``padding="valid"`` for the paper's unpadded convolutions and
    crop-and-copy; ``batch_norm`` is a modern addition, off by default). As the released Caffe
    model, dropout 0.5 ends the two deepest levels and a ReLU follows each up-convolution;
    ``dropout_levels=1, upconv_relu=False`` is the form the paper's text describes.

    ``upsample``: ``"deconv"`` (the paper's 2x2 up-convolution), ``"bilinear"`` or ``"interp"``
    (bilinear, then 1x1 conv(-BN)-ReLU; mmseg). ``head_form``: ``"paper"`` (1x1 classifier) or
    ``"fcn"`` (an FCN head of ``base_width`` channels on the last map). ``aux_loss``: an FCN
    auxiliary head on the expanding path's stride-2 map. The last two need ``padding="same"``;
    mmseg's ``unet-s5-d16`` is ``batch_norm=True, dropout_levels=0, upsample="interp",
    head_form="fcn", aux_loss=True``."""
    check_choice("padding", padding, PADDINGS)
    check_choice("head_form", head_form, HEAD_FORMS)
    widths = tuple(base_width * 2**i for i in range(5))
    encoder = UNetEncoder(in_channels, widths, padding, batch_norm, dropout_levels=dropout_levels)
    if head_form == "paper" and not aux_loss:
        decoder = UNetDecoder(
            encoder.out_channels, encoder.strides, num_classes, None, upsample, padding, batch_norm, upconv_relu
        )
        return UNet(encoder, decoder, num_classes, padding == "valid", in_channels)
    if padding != "same":
        raise InvalidOptionError(
            f"head_form={head_form!r}, aux_loss={aux_loss!r} need padding='same' (the heads read the "
            "expanding path's maps, which valid padding shrinks); got padding='valid'"
        )
    body = UNetBody(
        encoder,
        UNetDecoder(encoder.out_channels, encoder.strides, None, None, upsample, padding, batch_norm, upconv_relu),
    )
    chans, strides = body.out_channels, body.strides
    head: nn.Module
    if head_form == "fcn":
        head = FCNHead(chans, strides, num_classes, index=0, channels=base_width)
    else:
        head = LevelClassifier(chans, num_classes)
    aux = {"aux": FCNHead(chans, strides, num_classes, index=1, channels=base_width)} if aux_loss else None
    return UNet(body, head, num_classes, False, in_channels, aux)


@register_model
def unet_resnet34(
    *, num_classes: int = 21, upsample: str = "bilinear", backbone_weights: WeightsArg = None
) -> SegmentationModel:
    """U-Net decoder (blocks of 256, 128, 64, 32, 16 channels with batch norm) over ResNet-34's
    stem (stride 2) and four stages (4 ... 32), plus one block without a skip back to stride 1."""
    backbone = build_backbone("resnet34", output_stride=32, weights=backbone_weights)
    head = UNetDecoder(backbone.out_channels, backbone.strides, num_classes, upsample=upsample, batch_norm=True)
    return SegmentationModel(backbone, head, num_classes=num_classes)

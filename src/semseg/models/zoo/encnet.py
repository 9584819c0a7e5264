"""EncNet (Zhang et al., https://arxiv.org/abs/1803.08904): dilated ResNet at output stride 8, the
Context Encoding Module on stage 4 with the Semantic Encoding (SE) branch, and the FCN auxiliary
head on stage 3 (``aux_loss=True``). ``forward(x, return_aux=True)`` returns the SE logits as
``aux["se"]`` (``(N, num_classes)``), next to ``aux["aux"]`` when the aux head is on."""

from __future__ import annotations

from torch import Tensor

from semseg.models.backbones import build_backbone
from semseg.models.heads.encnet import EncHead
from semseg.models.heads.fcn import FCNHead
from semseg.models.registry import register_variants
from semseg.models.segmentor import SegmentationModel, SegmentationOutput, _resize
from semseg.models.zoo.common import WeightsArg
from semseg.models.zoo.pspnet import check_stem


class EncNetModel(SegmentationModel):
    """:class:`SegmentationModel` whose head also yields the SE logits, added to ``aux["se"]``.

    Shape: ``(N, 3, H, W)`` -> logits ``(N, C, H, W)``; with ``return_aux`` also
    ``aux["se"]`` of ``(N, C)`` and the resized ``aux["aux"]`` when built with ``aux_loss``.
    """

    head: EncHead

    def forward(self, x: Tensor, return_aux: bool = False) -> Tensor | SegmentationOutput:
        if not return_aux:
            return super().forward(x)
        size = x.shape[-2:]
        features = self.backbone(x)
        logits, se = self.head.forward_with_se(features)
        aux = {name: _resize(head(features), size) for name, head in self.aux_heads.items()}
        if se is not None:
            aux["se"] = se
        return SegmentationOutput(_resize(logits, size), aux)


def encnet(
    depth: int,
    *,
    num_classes: int = 21,
    output_stride: int = 8,
    num_codes: int = 32,
    gate: str = "sigmoid",
    se_loss: bool = True,
    deep_stem: bool = True,
    aux_loss: bool = False,
    backbone_weights: WeightsArg = None,
) -> EncNetModel:
    """EncNet on a dilated ResNet-``depth``: the Context Encoding Module with ``num_codes``
    codewords and a ``gate`` ("sigmoid" as in the paper, or "softmax"), and the SE branch."""
    check_stem(f"encnet_resnet{depth}", deep_stem, backbone_weights)
    backbone = build_backbone(f"resnet{depth}", output_stride, None, backbone_weights, deep_stem=deep_stem)
    chans, strides = backbone.out_channels, backbone.strides
    head = EncHead(chans, strides, num_classes, num_codes=num_codes, gate=gate, se_loss=se_loss)
    aux = {"aux": FCNHead(chans, strides, num_classes, index=-2)} if aux_loss else None
    return EncNetModel(backbone, head, aux, num_classes=num_classes)


register_variants(
    encnet,
    {
        f"encnet_resnet{depth}": (
            depth,
            f"EncNet on a dilated ResNet-{depth} (OS8, deep stem): 32 codewords, sigmoid gate, SE branch.",
        )
        for depth in (50, 101)
    },
    # NCHW by default: in NHWC the train step measured 0.95x (PSPNet, whose 3x3 conv over 4096
    # channels oneDNN runs slower in NHWC) and 0.98x (EncNet) at 512x512 on CPU.
    channels_last=False,
)

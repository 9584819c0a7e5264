"""EncNet (Zhang et al., https://arxiv.org/abs/1803.08904): dilated ResNet at output stride 8, the
Context Encoding Module on stage 4 with the Semantic Encoding (SE) branch, and the FCN auxiliary
head on stage 3 (``aux_loss=True``). ``forward(x, return_aux=True)`` returns the SE logits as
``aux["se"]`` (``(N, num_classes)``), next to ``aux["aux"]`` when the aux head is on.

Defaults follow the authors' release (PyTorch-Encoding ``encoding/models/sseg/encnet.py`` and its
``resnet50s``/``resnet101s``): the Context Encoding Module returns ``relu(x + x * gamma)``
(``residual=True``; ``False`` is the paper's ``x * gamma``), a 64-64-128 deep stem
(``stem_width=64``), the first block of each dilated stage at the previous rate, element-wise
dropout 0.1 and ``align_corners=True``. ``lateral=True`` is the release's Pascal VOC / Context
form (it turns the option on for datasets whose name starts with "p")."""

from __future__ import annotations

from semseg.models.heads.encnet import EncHead
from semseg.models.registry import register_variants
from semseg.models.segmentor import SegmentationModel
from semseg.models.zoo.common import DEEP_STEM_CONTEXT_CHANNELS_LAST, WeightsArg, deep_stem_model


def encnet(
    depth: int,
    *,
    num_classes: int = 21,
    output_stride: int = 8,
    num_codes: int = 32,
    gate: str = "sigmoid",
    se_loss: bool = True,
    deep_stem: bool = True,
    stem_width: int = 64,
    residual: bool = True,
    lateral: bool = False,
    align_corners: bool = True,
    aux_loss: bool = False,
    backbone_weights: WeightsArg = None,
) -> SegmentationModel:
    """EncNet on a dilated ResNet-``depth``: the Context Encoding Module with ``num_codes``
    codewords and a ``gate`` ("sigmoid" as in the paper, or "softmax"), and the SE branch.
    ``residual``, ``lateral``: see :class:`~semseg.models.heads.encnet.EncHead`."""
    return deep_stem_model(
        "encnet",
        depth,
        EncHead,
        num_classes,
        output_stride,
        deep_stem,
        aux_loss,
        backbone_weights,
        backbone_options={"stem_width": stem_width},
        output_align_corners=align_corners,
        num_codes=num_codes,
        gate=gate,
        se_loss=se_loss,
        residual=residual,
        lateral=lateral,
    )


register_variants(
    encnet,
    {
        f"encnet_resnet{depth}": (
            depth,
            f"EncNet on a dilated ResNet-{depth} (OS8, deep stem): 32 codewords, sigmoid gate, SE branch.",
        )
        for depth in (50, 101)
    },
    channels_last=DEEP_STEM_CONTEXT_CHANNELS_LAST,
)

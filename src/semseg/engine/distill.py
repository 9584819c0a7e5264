"""Knowledge distillation from a frozen teacher (``train.distill``).

Hinton, Vinyals and Dean, *Distilling the Knowledge in a Neural Network*, 2015
(https://arxiv.org/abs/1503.02531), per pixel as in Liu et al., *Structured Knowledge
Distillation for Semantic Segmentation*, CVPR 2019 (https://arxiv.org/abs/1903.04197), whose
pixel-wise term is this one.

The teacher sees the same augmented crops as the student, on the fly, so the soft targets follow
every scale, crop and flip of the augmentation without storing a probability map per frame. It
may itself be an ensemble over scales and flips (``scales``, ``flip``: the multi-scale + flip
inference of :func:`semseg.inference.infer_multiscale`), which is how a single-scale student
learns from the multi-scale predictions of a model. The term is added to the criterion's loss::

    loss = criterion(student, labels) + weight * T^2 * mean over labelled pixels of KL(q_T || p_T)

where ``q_T`` is the teacher's averaged probabilities sharpened or softened by temperature ``T``
(``softmax(log q / T)``) and ``p_T = softmax(student logits / T)``; ``T^2`` keeps the gradient's
scale independent of ``T`` (Hinton et al., Sec. 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from semseg.constants import IGNORE_INDEX, SHIPPED_MODELS_DIR
from semseg.data.transforms import normalize_batch
from semseg.engine.checkpoint import load_checkpoint_model
from semseg.errors import CheckpointError, ConfigError
from semseg.inference.fastpath import fast_inference_model
from semseg.inference.modes import infer_multiscale
from semseg.models import SegmentationModel
from semseg.precision import autocast


@dataclass
class Teacher:
    """A frozen model whose (multi-scale + flip) probabilities are the student's soft targets.

    Attributes:
        model: in eval mode, batch norm folded into the convolutions, without gradients.
        weight: the distillation term's factor in the loss.
        temperature: ``T`` of the soft targets (1: the teacher's own probabilities).
        scales, flip: the teacher's inference passes (``[1.0]`` and ``False``: one pass).
    """

    model: SegmentationModel
    weight: float = 1.0
    temperature: float = 1.0
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    @torch.no_grad()
    def probabilities(self, images: Tensor, precision: str = "fp32") -> Tensor:
        """Soft targets ``(N, C, H, W)`` float32 for uint8 images ``(N, B, H, W)`` (normalised
        here with the teacher's own mean and std), averaged over the teacher's passes."""
        x = normalize_batch(images, self.model.mean, self.model.std)
        with autocast(precision, images.device):
            probs = infer_multiscale(self.model, x, self.scales, self.flip)
        return probs.float()


def build_teacher(spec: dict[str, Any] | None, num_classes: int, device: torch.device) -> Teacher | None:
    """The teacher of ``train.distill`` (``None`` when unset), on ``device``.

    ``spec["teacher"]`` is a shipped model's name (``camvid``), a run folder, a checkpoint folder
    or a ``model.safetensors`` file. Raises :class:`ConfigError` for one that cannot be read or
    whose classes differ from the student's.
    """
    if spec is None:
        return None
    source = str(spec["teacher"])
    # Shipped models are checkpoint folders in SHIPPED_MODELS_DIR (semseg.pretrained, a layer
    # above the engine, loads them the same way).
    shipped = sorted(p.parent.name for p in SHIPPED_MODELS_DIR.glob("*/meta.json"))
    try:
        if Path(source).exists():
            model = load_checkpoint_model(source)
        elif source in shipped:
            model = load_checkpoint_model(SHIPPED_MODELS_DIR / source)
        else:
            raise ConfigError(
                f"train.distill.teacher={source!r} is neither a run folder, a checkpoint nor a shipped model "
                f"({', '.join(shipped) or 'none'})"
            )
    except CheckpointError as exc:
        raise ConfigError(f"train.distill.teacher: {exc}") from None
    if model.num_classes == 1 or num_classes == 1:
        raise ConfigError("train.distill is for multi-class models; the teacher or the student is binary")
    if model.num_classes != num_classes:
        raise ConfigError(
            f"train.distill.teacher {source} predicts {model.num_classes} classes; the student has {num_classes}"
        )
    model = fast_inference_model(model.float().eval()).to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    options = {key: value for key, value in spec.items() if key != "teacher"}  # absent keys: Teacher's defaults
    if "scales" in options:
        options["scales"] = tuple(float(s) for s in options["scales"])
    return Teacher(model, **options)


def distillation_loss(
    student_logits: Tensor,
    teacher_probs: Tensor,
    target: Tensor,
    temperature: float = 1.0,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """``T^2 x`` the mean over labelled pixels of ``KL(q_T || p_T)`` (module docstring).

    Args:
        student_logits: ``(N, C, h, w)``; resized (bilinear) to the targets' size when smaller.
        teacher_probs: ``(N, C, H, W)``, each pixel's probabilities summing to 1.
        target: labels ``(N, H, W)``; pixels at ``ignore_index`` (void, and the padding of crops
            larger than the image) take no part.

    Returns:
        A scalar float32 tensor (0 when no pixel is labelled, still attached to the graph).
    """
    if student_logits.shape[-2:] != teacher_probs.shape[-2:]:
        student_logits = F.interpolate(
            student_logits, size=teacher_probs.shape[-2:], mode="bilinear", align_corners=False
        )
    t = float(temperature)
    log_q = torch.log(teacher_probs.float().clamp_min(1e-8))
    if t != 1.0:
        log_q = torch.log_softmax(log_q / t, dim=1)
    log_p = torch.log_softmax(student_logits.float() / t, dim=1)
    per_pixel = (log_q.exp() * (log_q - log_p)).sum(dim=1)  # (N, H, W)
    labelled = target != ignore_index
    count = labelled.sum()
    if count == 0:
        return per_pixel.sum() * 0.0
    return per_pixel[labelled].sum() / count * (t * t)

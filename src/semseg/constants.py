"""Constants every layer agrees on. Imported by everyone; imports nothing of semseg."""

from __future__ import annotations

from pathlib import Path

IGNORE_INDEX = 255
"""The train id of pixels left out of every loss and metric (VOC's object borders, Cityscapes'
unevaluated classes, ADE20K's "other"). Datasets map their raw labels to it once."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""RGB mean (0-1 scale) of ImageNet, the normalisation of every ImageNet-pretrained backbone."""

IMAGENET_STD = (0.229, 0.224, 0.225)
"""RGB standard deviation (0-1 scale) of ImageNet."""

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""The numeric precisions of training, evaluation and ``semseg bench`` (see :mod:`semseg.precision`)."""

PREDICT_PRECISION = "auto"
"""What ``semseg.predict``, ``semseg predict`` and ``semseg serve`` run in unless told otherwise:
bfloat16 autocast where the hardware computes it natively (AMX / AVX512-BF16 CPUs, Ampere and
newer GPUs), float32 elsewhere. Measured on CamVid val with the shipped model (its
``scores.json`` holds both): 74.88% mIoU against 74.83% in float32. ``semseg eval`` and the
evaluations during training stay float32 (``eval.precision``), so scores compare across machines."""


SHIPPED_MODELS_DIR = Path(__file__).resolve().parent / "pretrained"
"""Where the shipped models live, one checkpoint folder each (``model.safetensors`` and
``meta.json``): :mod:`semseg.pretrained` loads them; the training engine, which may not import
that layer, finds a distillation teacher there by name."""

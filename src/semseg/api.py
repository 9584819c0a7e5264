"""The high-level API for users who just want masks: :func:`load_model` and :func:`predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from semseg.constants import PREDICT_PRECISION
from semseg.data.folder import default_palette
from semseg.engine.checkpoint import load_checkpoint_model
from semseg.errors import CheckpointError, DataError, UnknownModelError
from semseg.inference import Predictor
from semseg.inference.fastpath import fast_inference_model
from semseg.models import SegmentationModel, create_model, list_models
from semseg.pretrained import list_shipped, load_shipped

ImageLike = np.ndarray | Tensor


def load_model(
    name_or_checkpoint: str | Path,
    num_classes: int | None = None,
    device: str = "cpu",
    fast: bool = False,
    **options: Any,
) -> SegmentationModel:
    """A ready model in eval mode that carries ``class_names``, ``palette``, ``mean`` and ``std``.

    Args:
        name_or_checkpoint: a checkpoint (run folder, checkpoint folder or its
            ``model.safetensors``), the name of a model shipped with the package
            (:func:`semseg.pretrained.list_shipped`, e.g. ``"camvid"``: trained weights, offline),
            or a registered model name (random head; backbone weights as ``options`` say, e.g.
            ``backbone_weights="imagenet"``).
        num_classes: for a model name only (default 21).
        fast: return an inference-only copy with batch norm folded into the convolutions
            (:func:`semseg.inference.fastpath.fast_inference_model`, checked equal within 1e-4
            relative). Off by default because the copy cannot be trained (it has no batch norm);
            :func:`predict`, ``semseg predict`` and ``semseg eval`` fold a copy by themselves.
    """
    path = Path(name_or_checkpoint)
    if path.exists():
        model = load_checkpoint_model(path)
    elif str(name_or_checkpoint) in list_shipped():
        model = load_shipped(str(name_or_checkpoint))
    elif str(name_or_checkpoint) in list_models():
        n = num_classes or 21
        model = create_model(str(name_or_checkpoint), num_classes=n, **options)
        k = model.num_labels  # 2 for a binary (num_classes=1) model
        model.set_metadata([f"class_{i}" for i in range(k)], default_palette(k))
    else:
        # create_model raises UnknownModelError with suggestions; a path that does not exist
        # is reported as such when it looks like one.
        if any(sep in str(name_or_checkpoint) for sep in ("/", "\\", ".safetensors")):
            raise DataError(f"checkpoint not found: {name_or_checkpoint}")
        try:
            create_model(str(name_or_checkpoint))  # raises with the closest network names
        except UnknownModelError as exc:
            shipped = ", ".join(list_shipped()) or "none"
            raise UnknownModelError(f"{exc}; nor is it a run folder or a shipped model ({shipped})") from None
    model = model.to(device).eval()
    return fast_inference_model(model) if fast else model


def as_chw_uint8(image: ImageLike, bands: int = 3) -> Tensor:
    """A uint8 ``HxWxB`` array or ``BxHxW`` tensor as a ``uint8 (B, H, W)`` tensor (``B = bands``,
    3 for RGB; a multi-band model's ``len(model.mean)``)."""
    if isinstance(image, np.ndarray):
        array = np.ascontiguousarray(image)
        t = torch.from_numpy(array if array.flags.writeable else array.copy())  # e.g. np.asarray(PIL image)
    else:
        t = image
    if t.dtype != torch.uint8:
        raise DataError(f"predict expects uint8 images, got {t.dtype}")
    if t.dim() == 3 and t.shape[-1] == bands and t.shape[0] != bands:
        t = t.permute(2, 0, 1)
    if t.dim() != 3 or t.shape[0] != bands:
        raise DataError(f"predict expects an HxWx{bands} array or {bands}xHxW tensor, got shape {tuple(t.shape)}")
    return t


def predict(
    model: SegmentationModel, image: ImageLike | list[ImageLike], **inference_options: Any
) -> Tensor | list[Tensor]:
    """Label maps ``int64 (H, W)`` on the CPU at each image's original size.

    Args:
        model: e.g. from :func:`load_model`; its ``mean``/``std`` normalise the input.
        image: uint8 ``HxWx3`` array or ``3xHxW`` tensor (``B`` bands for a model with
            ``in_channels=B``), or a list of them (sizes may differ). A binary (one-channel)
            model gives labels 0 and 1.
        **inference_options: the :class:`~semseg.inference.Predictor` recipe (``mode``,
            ``crop``, ``stride``, ``scales``, ``flip``, ``crf``, ``crf_options``, ``precision``,
            ``threshold``). ``precision`` defaults to ``PREDICT_PRECISION`` (``auto``: bfloat16
            autocast where the hardware computes it natively, float32 elsewhere; on the shipped
            CamVid model 74.88% val mIoU against 74.83% in float32); ``precision="fp32"`` is the
            exact path, and what ``semseg eval`` uses.
    """
    inference_options.setdefault("precision", PREDICT_PRECISION)
    single = not isinstance(image, list)
    images = [image] if single else image
    was_training = model.training
    model.eval()
    predictor = Predictor(model, **inference_options)
    try:
        out = [predictor(as_chw_uint8(img, len(model.mean))).cpu() for img in images]
    finally:
        model.train(was_training)
    return out[0] if single else out


# The dataset whose labels a converted checkpoint predicts, by its class count (torchvision's
# COCO subset uses the 21 Pascal VOC labels).
_DATASET_BY_CLASSES = {21: "voc", 19: "cityscapes", 150: "ade20k"}


def convert_checkpoint(
    file: str | Path,
    from_format: str,
    model: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    num_classes: int | None = None,
) -> Path:
    """Convert a published checkpoint (torchvision, mmsegmentation, the authors' releases) into a
    semseg checkpoint folder.

    The weights are mapped onto the equivalent semseg network and loaded strictly; the folder
    (``model.safetensors`` + ``meta.json`` with classes, palette and normalisation) is what
    :func:`load_model`, ``semseg eval`` and ``semseg predict`` read. See ``docs/convert.md``.

    Args:
        file: the foreign checkpoint (``.pth``/``.pt`` read with ``weights_only=True`` or an
            inert unpickler, or ``.safetensors``); never executed.
        from_format: ``"torchvision"``, ``"mmseg"``, ``"hrnet"`` (HRNet-Semantic-Segmentation),
            ``"hszhao"`` (hszhao/semseg's PSPNet), ``"encoding"`` (PyTorch-Encoding's EncNet) or
            ``"kazuto"`` (kazuto1011/deeplab-pytorch's DeepLab v2).
        model: the source network (e.g. ``"deeplabv3_resnet101"``); default: recognised from the keys.
        out: the checkpoint folder to write; default ``<file stem>_semseg`` beside ``file``.
        overwrite: replace an existing checkpoint folder at ``out``.
        num_classes: the class count the checkpoint must have (default: its classifier's).

    Returns the folder written. Raises :class:`~semseg.errors.CheckpointError` or
    :class:`~semseg.errors.InvalidOptionError` with one line naming the first mismatching keys.
    """
    import semseg.data.ade20k as ade20k
    import semseg.data.cityscapes as cityscapes
    import semseg.data.voc as voc
    from semseg.convert import convert_file, save_converted

    labels = {"voc": voc, "cityscapes": cityscapes, "ade20k": ade20k}
    folder = Path(out) if out is not None else Path(file).with_name(Path(file).stem + "_semseg")
    if folder.exists() and not overwrite:  # said before the minutes a large conversion takes
        raise CheckpointError(f"{folder} exists; pass --overwrite (overwrite=True) to replace it")
    converted = convert_file(file, from_format, model, num_classes)
    net = converted.model
    k = net.num_labels
    dataset = _DATASET_BY_CLASSES.get(k)
    if dataset is not None:
        net.set_metadata(list(labels[dataset].CLASSES), [tuple(c) for c in labels[dataset].PALETTE])
    else:  # a dataset semseg does not ship: the checkpoint's own names if it has them
        names = converted.class_names if converted.class_names and len(converted.class_names) == k else None
        net.set_metadata(names or [f"class_{i}" for i in range(k)], default_palette(k))
    config = {
        "model": {"name": net.model_name, "num_classes": k, "options": dict(net.model_options), "channels_last": False},
        "data": {"dataset": dataset or "folder", "classes": None if dataset else list(net.class_names or [])},
    }
    return save_converted(converted, folder, file, config, overwrite=overwrite)

"""From a uint8 image to a label map: normalise with the model's own mean/std, run the network in
any inference mode (whole, sliding window, multi-scale + flip), optionally refine with the dense
CRF. One :class:`Predictor` serves ``semseg.predict``, ``semseg predict`` and every evaluation
(``semseg.engine.evaluate.evaluate``), so what is measured is what users get.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from semseg.data.transforms import normalize_batch
from semseg.inference.crf import dense_crf
from semseg.inference.modes import inference
from semseg.precision import autocast


def predict_scores(
    model: nn.Module,
    images: Tensor,
    mode: str = "whole",
    crop: Sequence[int] | None = None,
    stride: Sequence[int] | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
) -> Tensor:
    """Scores ``(N, C, H, W)`` for normalised images ``(N, 3, H, W)``: the model's logits for
    plain whole-image inference (one forward, nothing else), otherwise the averaged probabilities
    of :func:`semseg.inference.inference` (sliding window, multi-scale, flip). Either way the
    argmax over ``C`` is the prediction."""
    if mode == "whole" and tuple(scales) == (1.0,) and not flip:
        return model(images)
    return inference(model, images, mode=mode, crop=crop, stride=stride, scales=scales, flip=flip, output="probs")


class Predictor:
    """Label maps for uint8 images, as one configured inference recipe.

    Args:
        model: a segmentation model (or its DDP wrapper) whose ``mean``/``std`` normalise the input.
        mode, crop, stride, scales, flip: the inference mode (see :func:`predict_scores`).
        crf: refine the network's probabilities with :func:`semseg.inference.dense_crf`
            (DeepLab's parameters unless ``crf_options`` says otherwise).
        crf_options: keyword arguments of :func:`~semseg.inference.dense_crf`.
        precision: autocast of the network's forward passes (:mod:`semseg.precision`).

    The model must already be in ``eval()`` mode; calls run without autograd.

    Shape:
        image ``uint8 (3, H, W)`` -> labels ``int64 (H, W)`` on the model's device.
    """

    def __init__(
        self,
        model: nn.Module,
        mode: str = "whole",
        crop: Sequence[int] | None = None,
        stride: Sequence[int] | None = None,
        scales: Sequence[float] = (1.0,),
        flip: bool = False,
        crf: bool = False,
        crf_options: dict[str, Any] | None = None,
        precision: str = "fp32",
    ) -> None:
        self.model = model
        inner = getattr(model, "module", model)  # DDP keeps the metadata on the wrapped module
        self.mean, self.std = inner.mean, inner.std
        self.options = {"mode": mode, "crop": crop, "stride": stride, "scales": tuple(scales), "flip": flip}
        self.crf = crf
        self.crf_options = dict(crf_options or {})
        self.precision = precision
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def scores(self, image: Tensor) -> Tensor:
        """Scores ``(C, H, W)`` whose argmax is the prediction: logits or probabilities as
        :func:`predict_scores` returns them, probabilities after the CRF."""
        x = normalize_batch(image[None].to(self.device), self.mean, self.std)
        with autocast(self.precision, self.device):
            if self.crf:
                probs = inference(self.model, x, output="probs", **self.options)[0]
            else:
                return predict_scores(self.model, x, **self.options)[0]
        return dense_crf(image.permute(1, 2, 0).to(self.device), probs.float(), **self.crf_options)

    def __call__(self, image: Tensor) -> Tensor:
        return self.scores(image).argmax(0)

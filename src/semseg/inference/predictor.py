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
from semseg.errors import DataError, InvalidOptionError
from semseg.inference.crf import dense_crf
from semseg.inference.fastpath import fast_inference_model
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
    """Scores ``(N, C, H, W)`` for normalised images ``(N, B, H, W)``: the model's logits for
    plain whole-image inference (one forward, nothing else), otherwise the averaged probabilities
    of :func:`semseg.inference.inference` (sliding window, multi-scale, flip). Either way the
    argmax over ``C`` is the prediction (for a binary model, ``C == 1``: logit > 0, or
    probability > 0.5)."""
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
        threshold: for a binary model (one sigmoid channel): foreground where the foreground
            probability (averaged over scales and flips, or after the CRF) is above it.
        fast: run an inference copy of the model with batch norm folded into its convolutions
            (:mod:`semseg.inference.fastpath`; checked equal to the plain model within 1e-4
            relative, rebuilt when the model's weights change); the model itself is not touched.
            Forward passes run under ``torch.inference_mode`` either way.

    The model must already be in ``eval()`` mode; calls run without autograd.

    A binary model (``num_classes=1``) gives labels 0 (background) and 1 (foreground); its scores
    are the two-class probabilities ``[1 - p, p]`` (what the dense CRF takes).

    Shape:
        image ``uint8 (B, H, W)`` (B = the model's input bands, 3 for RGB) -> labels ``int64 (H, W)``
        on the model's device.
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
        threshold: float = 0.5,
        fast: bool = True,
    ) -> None:
        self.model = model
        inner = getattr(model, "module", model)  # DDP keeps the metadata on the wrapped module
        self.mean, self.std = inner.mean, inner.std
        self.binary = getattr(inner, "num_classes", None) == 1
        if not 0.0 < float(threshold) < 1.0:
            raise InvalidOptionError(f"threshold={threshold!r}; expected a probability in (0, 1)")
        self.threshold = float(threshold)
        self.options = {"mode": mode, "crop": crop, "stride": stride, "scales": tuple(scales), "flip": flip}
        self.crf = crf
        self.crf_options = dict(crf_options or {})
        self.precision = precision
        # A runtime backend (semseg.export.OnnxRuntimeModel) has no parameters: it takes CPU tensors.
        self.device = next(model.parameters(), torch.empty(0)).device
        self.fast = fast
        self._fast_copy: tuple[int, nn.Module] | None = None

    def network(self) -> nn.Module:
        """The module the forward passes run: the model, or its folded copy (``fast``; only for
        a model in eval mode, as a training-mode model's batch norm uses batch statistics)."""
        if not self.fast or self.model.training or getattr(self.model, "inference_only", False):
            return self.model
        if next(self.model.parameters(), None) is None:  # a runtime backend: nothing to fold
            return self.model
        # Parameter/buffer version counters move on every in-place update (optimizer step,
        # load_state_dict): a changed model gets a fresh copy.
        version = sum(t._version for t in (*self.model.parameters(), *self.model.buffers()))
        if self._fast_copy is None or self._fast_copy[0] != version:
            self._fast_copy = (version, fast_inference_model(self.model))
        return self._fast_copy[1]

    def scores(self, image: Tensor) -> Tensor:
        """Scores ``(C, H, W)`` whose argmax is the prediction: logits or probabilities as
        :func:`predict_scores` returns them, probabilities after the CRF. A binary model's are
        the probabilities ``[1 - p, p]`` ``(2, H, W)``."""
        net = self.network()
        with torch.inference_mode():
            out = self._scores(net, image)
        return out.clone()  # outside inference mode: an ordinary tensor callers may modify

    def _scores(self, net: nn.Module, image: Tensor) -> Tensor:
        if image.dim() != 3 or image.shape[0] != len(self.mean):
            raise DataError(
                f"the model takes {len(self.mean)}-band images (model.in_channels={len(self.mean)}) "
                f"but the image has {image.shape[0] if image.dim() == 3 else tuple(image.shape)} bands"
            )
        x = normalize_batch(image[None].to(self.device), self.mean, self.std)
        with autocast(self.precision, self.device):
            if self.crf:
                probs = inference(net, x, output="probs", **self.options)[0]
            else:
                out = predict_scores(net, x, **self.options)[0]
                if not self.binary:
                    return out
                probs = out.float() if self._averaged() else out.float().sigmoid()
        probs = probs.float()
        if self.binary:
            probs = torch.cat([1 - probs, probs])
        if not self.crf:
            return probs
        return dense_crf(rgb_view(image).permute(1, 2, 0).to(self.device), probs, **self.crf_options)

    def _averaged(self) -> bool:
        """Whether :func:`predict_scores` returns probabilities (not logits) for these options."""
        return not (self.options["mode"] == "whole" and self.options["scales"] == (1.0,) and not self.options["flip"])

    def __call__(self, image: Tensor) -> Tensor:
        return self.labels(self.scores(image))

    def labels(self, scores: Tensor) -> Tensor:
        """The label map ``int64 (H, W)`` of :meth:`scores` ``(C, H, W)``."""
        if self.binary:
            return (scores[1] > self.threshold).long()
        return scores.argmax(0)

    def probabilities(self, scores: Tensor) -> Tensor:
        """Class probabilities ``(C, H, W)`` summing to 1 over ``C`` from :meth:`scores` (a softmax
        where the scores are plain whole-image logits)."""
        if self.binary or self.crf or self._averaged():
            return scores.float()
        return scores.float().softmax(0)


def rgb_view(image: Tensor) -> Tensor:
    """The three bands an RGB consumer (the CRF's colour kernel, an overlay) sees of a
    ``(B, H, W)`` image: the first three bands, or the first band as grey for ``B < 3``."""
    if image.shape[0] >= 3:
        return image[:3]
    return image[:1].expand(3, *image.shape[1:]).contiguous()

"""Producing segmentations from a trained model: inference modes and the dense CRF.

- :func:`inference` (and :func:`infer_whole`, :func:`infer_slide`, :func:`infer_multiscale`):
  whole image, sliding window, multi-scale + flip, at the original size.
- :class:`Predictor`: uint8 image -> label map with any mode and optionally the CRF (what
  ``semseg.predict`` and every evaluation use); :func:`predict_scores` for normalised batches.
- :func:`dense_crf`: the fully connected CRF of Krahenbuhl and Koltun (DeepLab's parameters) on a
  permutohedral lattice in PyTorch, on CPU or GPU; :class:`DenseCRF`: the same as a trainable layer.
"""

from semseg.inference.crf import CRFRefined, DenseCRF, dense_crf, dense_crf_naive
from semseg.inference.lattice import LatticeOperator, PermutohedralLattice
from semseg.inference.modes import infer_multiscale, infer_slide, infer_whole, inference
from semseg.inference.predictor import Predictor, predict_scores, rgb_view

__all__ = [
    "CRFRefined",
    "DenseCRF",
    "LatticeOperator",
    "PermutohedralLattice",
    "Predictor",
    "dense_crf",
    "dense_crf_naive",
    "infer_multiscale",
    "infer_slide",
    "infer_whole",
    "inference",
    "predict_scores",
    "rgb_view",
]

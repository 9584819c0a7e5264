"""Producing segmentations from a trained model: inference modes and the dense CRF.

- :func:`inference` (and :func:`infer_whole`, :func:`infer_slide`, :func:`infer_multiscale`):
  whole image, sliding window, multi-scale + flip, at the original size.
- :func:`dense_crf`: the fully connected CRF of Krahenbuhl and Koltun (DeepLab's parameters) on a
  permutohedral lattice in PyTorch, on CPU or GPU; :class:`DenseCRF`: the same as a trainable layer.
"""

from semseg.inference.crf import CRFRefined, DenseCRF, dense_crf, dense_crf_naive
from semseg.inference.evaluate_crf import evaluate_with_crf, predict_with_crf
from semseg.inference.lattice import LatticeOperator, PermutohedralLattice
from semseg.inference.modes import infer_multiscale, infer_slide, infer_whole, inference

__all__ = [
    "CRFRefined",
    "DenseCRF",
    "LatticeOperator",
    "PermutohedralLattice",
    "dense_crf",
    "dense_crf_naive",
    "evaluate_with_crf",
    "infer_multiscale",
    "infer_slide",
    "infer_whole",
    "inference",
    "predict_with_crf",
]

"""Losses: pixel-wise cross-entropy with ignore label and class weights.

Class statistics and median-frequency weights are properties of a dataset's masks and live in
:mod:`semseg.data.statistics`.
"""

from semseg.losses.functional import cross_entropy

__all__ = ["cross_entropy"]

"""Losses: pixel-wise cross-entropy with ignore label and class weights."""

from semseg.losses.functional import class_statistics, cross_entropy, median_frequency_weights

__all__ = ["class_statistics", "cross_entropy", "median_frequency_weights"]

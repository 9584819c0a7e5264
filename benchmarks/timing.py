"""Shared timing for the benchmark scripts: re-exports :mod:`semseg.bench` so that the scripts
and ``semseg bench`` measure the same way."""

from semseg.bench import format_rows, measure_in_subprocess, peak_rss_mb, time_model

__all__ = ["format_rows", "measure_in_subprocess", "peak_rss_mb", "time_model"]

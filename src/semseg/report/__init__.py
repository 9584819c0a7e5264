"""Reports of training runs: loss, learning-rate and validation-mIoU curves, per-class IoU, the
normalised confusion matrix and the worst-predicted val images, as PNG files and one
self-contained HTML page (``semseg report RUN [RUN ...]``; docs/reports.md).

matplotlib is needed only here (``pip install "semseg[report]"``); importing this package does
not import it.
"""

from semseg.report.build import ReportResult, default_out, make_report, planned_files
from semseg.report.run_data import EvalResult, RunData, WorstImage, evaluate_checkpoint, load_run

__all__ = [
    "EvalResult",
    "ReportResult",
    "RunData",
    "WorstImage",
    "default_out",
    "evaluate_checkpoint",
    "load_run",
    "make_report",
    "planned_files",
]

"""The work behind ``semseg export RUN_OR_MODEL --format onnx|torch-export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semseg.errors import ConfigError
from semseg.export.exporter import default_output, export_model


def run_export(args: argparse.Namespace) -> int:
    """Load the model as :func:`semseg.load_model` does (a run or checkpoint folder, a shipped
    model, or a registered network with ``--num-classes`` and random weights), export it, print
    the report (file, dynamic axes, parity on two input sizes)."""
    from semseg.api import load_model
    from semseg.models import list_models

    source = str(args.model)
    # A registered network's name (shipped models have other names): built with random weights.
    random_weights = not Path(source).exists() and source in list_models()
    if args.num_classes is not None and not random_weights:
        raise ConfigError(f"--num-classes is for a registered network; {source} fixes its classes")
    if len(args.size) != 2:
        raise ConfigError(f"--size expects HxW, got {args.size}")
    model = load_model(source, num_classes=args.num_classes)
    if random_weights:
        print(
            f"semseg: warning: {source} has random weights (a registered network, not a trained run)", file=sys.stderr
        )
    out = Path(args.out) if args.out else default_output(source, args.format)
    report = export_model(
        model,
        out,
        fmt=args.format,
        size=args.size,
        opset=args.opset,
        dynamo=args.dynamo,
        check=not args.no_check,
        overwrite=args.overwrite,
    )
    print(report.summary())
    return 0

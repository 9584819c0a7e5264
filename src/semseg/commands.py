"""The work behind each CLI command (``cli.py`` only parses arguments)."""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from semseg.constants import PREDICT_PRECISION
from semseg.engine.files import save_png_atomic, write_atomic
from semseg.errors import ConfigError, DataError


def cmd_train(args: argparse.Namespace) -> int:
    """``semseg train``: a new run from a preset and overrides, ``--resume RUN``, or
    ``--resume auto`` (continue the config's run folder if it has a checkpoint, else start it:
    the one command an elastic launcher repeats after a restart)."""
    from semseg.config import SAFE_ON_RESUME, Config, apply_overrides, load_config, resolve_config_path
    from semseg.engine.checkpoint import find_checkpoint
    from semseg.engine.trainer import train
    from semseg.errors import CheckpointError

    resume, config, overrides, overwrite = args.resume, args.config, args.overrides, args.overwrite
    if resume == "auto":
        cfg = load_config(resolve_config_path(config)) if config else Config()
        apply_overrides(cfg, overrides)
        if not cfg.output.name:
            raise ConfigError("--resume auto needs a fixed output.name (the folder to continue)")
        folder = Path(cfg.output.dir) / cfg.output.name
        try:
            find_checkpoint(folder)
            resume, config = str(folder), None
            overrides = [o for o in overrides if o.split("=", 1)[0].strip() in SAFE_ON_RESUME]
            print(f"--resume auto: continuing {folder}")
        except CheckpointError:
            # Nothing trained is in the folder (at most the config and logs of a run that died
            # before its first checkpoint): start it afresh.
            resume, overwrite = None, True
            print(f"--resume auto: no checkpoint in {folder}; starting it")
    if resume:
        if config or overwrite:
            raise ConfigError("--resume continues a run with its saved config; drop --config/--overwrite")
        run = train(Config(), resume=resume, progress=not args.no_progress, resume_overrides=overrides)
    else:
        cfg = load_config(resolve_config_path(config)) if config else Config()
        apply_overrides(cfg, overrides)
        run = train(cfg, progress=not args.no_progress, overwrite=overwrite)
    metrics = json.loads((run / "metrics.json").read_text())
    print(f"run folder: {run}")
    print(f"val mIoU {100 * metrics['miou']:.2f}%  pixel accuracy {100 * metrics['pixel_accuracy']:.2f}%")
    return 0


INFERENCE_KEYS = ("mode", "crop", "stride", "scales", "flip", "crf", "precision", "threshold")


def inference_options(args: argparse.Namespace, defaults: Any = None) -> dict[str, Any]:
    """The :class:`~semseg.inference.Predictor` recipe from CLI flags, falling back to a
    config's ``eval`` section (then to the predictor's own defaults)."""
    opts: dict[str, Any] = {key: getattr(defaults, key) for key in INFERENCE_KEYS if hasattr(defaults, key)}
    for key in INFERENCE_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            opts[key] = value
    if opts.get("mode") == "slide" and not opts.get("crop"):
        raise ConfigError("--mode slide needs --crop H,W (and optionally --stride H,W)")
    return opts


def _saved_run_device(cfg: Any) -> torch.device:
    """Where ``eval`` and ``recalibrate-bn`` run a saved checkpoint: CUDA when the run's
    ``train.device`` is ``auto`` and a GPU is present, else the CPU."""
    return torch.device("cuda" if cfg.train.device == "auto" and torch.cuda.is_available() else "cpu")


def cmd_eval(args: argparse.Namespace) -> int:
    """``semseg eval RUN``: scores of a checkpoint on a split, with any inference recipe."""
    from semseg.api import load_model
    from semseg.config import apply_overrides, saved_config
    from semseg.data import build_dataset
    from semseg.data.io import set_max_image_pixels
    from semseg.engine.checkpoint import read_meta
    from semseg.engine.evaluate import evaluate
    from semseg.inference import Predictor
    from semseg.metrics import format_table

    folder = _checkpoint_or_shipped(args.checkpoint)
    cfg = saved_config(read_meta(folder)["config"])
    apply_overrides(cfg, args.overrides)
    if args.data_root:
        cfg.data.root = args.data_root
    device = _saved_run_device(cfg)
    model = load_model(args.checkpoint, device=str(device))  # a shipped model's damage is reported as such
    set_max_image_pixels(cfg.data.max_image_pixels)
    dataset = build_dataset(
        cfg.data.dataset,
        cfg.data.root,
        args.split or cfg.data.val_split,
        classes=cfg.data.classes,
        binary=model.is_binary,
    )
    opts = inference_options(args, cfg.eval)
    scores, _ = evaluate(
        model,
        dataset,
        model.num_labels,
        device,
        predictor=Predictor(model, **opts),
        max_images=cfg.data.max_val_images,
        progress=not args.no_progress,
    )
    table = format_table(scores, model.class_names)
    print(table)
    n = len(dataset) if cfg.data.max_val_images is None else min(len(dataset), cfg.data.max_val_images)
    if "iiou" in scores:
        print(f"iIoU {100 * scores['iiou']:.2f}%  (Cityscapes instance-weighted)")
    print(f"mIoU {100 * scores['miou']:.2f}%  ({n} images, {opts})")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "metrics.json", json.dumps({**scores, "inference": opts}, indent=2))
        write_atomic(out / "per_class.txt", table + "\n")
    return 0


def cmd_recalibrate_bn(args: argparse.Namespace) -> int:
    """``semseg recalibrate-bn RUN``: a checkpoint whose batch-norm statistics are re-estimated on
    whole training images (:mod:`semseg.engine.bn_recalibration`), the weights unchanged."""
    from semseg.config import saved_config
    from semseg.data import build_dataset
    from semseg.data.io import set_max_image_pixels
    from semseg.engine.bn_recalibration import recalibrate_batch_norm
    from semseg.engine.checkpoint import load_weights, model_from_meta, read_meta, save_checkpoint
    from semseg.errors import InvalidOptionError

    folder = _checkpoint_or_shipped(args.checkpoint)
    shipped = not Path(args.checkpoint).exists()
    if args.out is None and shipped:
        raise InvalidOptionError(f"{args.checkpoint} is a shipped model: give the folder to write with --out")
    out = Path(args.out) if args.out else folder.parent / "bn_recalibrated"
    if out.exists() and not args.overwrite:
        raise InvalidOptionError(f"{out} exists; pass --overwrite to replace it, or choose --out")
    meta = read_meta(folder)
    cfg = saved_config(meta["config"])
    root = args.data_root or cfg.data.root  # None: the dataset's default folder (build_dataset says where)
    device = _saved_run_device(cfg)
    model = model_from_meta(meta)
    load_weights(folder, model, args.weights)
    model.to(device)
    set_max_image_pixels(cfg.data.max_image_pixels)
    split = args.split or cfg.data.train_split
    dataset = build_dataset(cfg.data.dataset, root, split, classes=cfg.data.classes, binary=model.is_binary)
    used = recalibrate_batch_norm(
        model, dataset, device, images=args.images, batch_size=args.batch_size, progress=not args.no_progress
    )
    meta["bn_recalibration"] = {
        "source": str(folder),
        "weights": args.weights,
        "dataset": cfg.data.dataset,
        "split": split,
        "images": used,
        "batch_size": args.batch_size,
    }
    save_checkpoint(out, model, meta)
    print(f"batch-norm statistics from {used} whole {split} images -> {out}  (evaluate: semseg eval {out})")
    return 0


def _checkpoint_or_shipped(name: str) -> Path:
    """A checkpoint folder from a run or checkpoint folder, or a shipped model's name."""
    from semseg.engine.checkpoint import find_checkpoint
    from semseg.pretrained import list_shipped, shipped_folder

    if not Path(name).exists() and name in list_shipped():
        return shipped_folder(name)
    return find_checkpoint(name)


def cmd_predict(args: argparse.Namespace) -> int:
    """``semseg predict INPUTS --model M``: for each image (files, folders, globs), a palette label
    PNG (a binary model's holds 0 and 255), a colour overlay with a legend of the classes found,
    with ``--masks DIR`` an image | prediction | ground truth panel, with ``--probs`` the class
    probabilities as ``float16 (C, H, W)`` ``.npy``; then one line of images/s. ``.npy``
    multi-band images are shown by their first bands."""
    import time

    from tqdm import tqdm

    from semseg.api import load_model
    from semseg.data.io import read_image, read_mask
    from semseg.engine.files import save_label_png
    from semseg.inference import Predictor, rgb_view
    from semseg.pretrained import list_shipped
    from semseg.viz import colorize, overlay, side_by_side, with_legend

    if getattr(args, "backend", "torch") == "onnxruntime":  # the network run by ONNX Runtime on its export
        from semseg.export import load_onnx_model

        model = load_onnx_model(args.model, verbose=True)
    else:
        model = load_model(args.model)  # first: an unknown model name is the first thing to say
    out = Path(args.out)
    videos = _video_inputs(args)
    paths = [] if videos else expand_inputs(args.images)
    masks: dict[str, Path] = {}
    if args.masks:
        if not Path(args.masks).is_dir():
            raise DataError(f"mask folder not found: {args.masks}")
        masks = {
            p.stem: p
            for p in sorted(Path(args.masks).iterdir())
            if p.suffix.lower() in (".png", ".bmp", ".tif", ".tiff")
        }
        if not masks:
            raise DataError(f"no masks (.png, .bmp, .tif) in {args.masks}")
    if videos:
        from semseg.video import check_video_outputs

        check_video_outputs(videos, out, args.frames, args.overwrite)
    else:
        _check_prediction_outputs(paths, out, args.overwrite)
    if not Path(args.model).exists() and args.model not in list_shipped():  # a network name: random weights
        print(
            f"semseg: warning: {args.model} is an untrained model (random classifier); "
            "pass a run folder or a shipped model",
            file=sys.stderr,
        )
    predictor = Predictor(model, **{"precision": PREDICT_PRECISION, **inference_options(args)})
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot make the output folder {out}: {exc.strerror}") from None
    names, palette = model.class_names or [], model.palette or []
    start = time.perf_counter()
    if videos:
        from semseg.video import predict_video

        count = 0
        for video in videos:
            n = predict_video(
                video,
                predictor,
                palette,
                out,
                binary=model.is_binary,
                frames=args.frames,
                progress=not args.no_progress,
            )
            count += n
            print(f"{video}: {n} frame(s) -> {out / (video.stem + '_overlay.mp4')}")
        seconds = time.perf_counter() - start
        print(f"{count} frame(s) in {seconds:.1f} s ({count / max(seconds, 1e-9):.2f} images/s) -> {out}")
        return 0
    for path in tqdm(paths, desc="predict", disable=len(paths) < 2 or args.no_progress):
        image = read_image(path)
        scores = predictor.scores(image)
        labels = predictor.labels(scores).cpu()
        if model.is_binary:  # 0 background, 255 foreground: the usual binary mask PNG
            save_label_png((labels * 255).numpy(), out / f"{path.stem}_labels.png")
        else:
            save_label_png(labels.numpy(), out / f"{path.stem}_labels.png", palette)
        rgb = rgb_view(image).permute(1, 2, 0).numpy()  # multi-band: the first three bands
        blended = overlay(rgb, labels, palette)
        present = sorted(int(i) for i in labels.unique())
        save_png_atomic(
            Image.fromarray(with_legend(blended, names, palette, present)), out / f"{path.stem}_overlay.png"
        )
        if path.stem in masks:
            truth = read_mask(masks[path.stem])
            if truth.shape != tuple(labels.shape):
                raise DataError(
                    f"{masks[path.stem]}: mask is {truth.shape[1]}x{truth.shape[0]} but the image is {labels.shape[1]}x{labels.shape[0]}"
                )
            panel = side_by_side(rgb, blended, colorize(truth, palette))
            save_png_atomic(Image.fromarray(panel), out / f"{path.stem}_panel.png")
        if args.probs:
            np.save(out / f"{path.stem}_probs.npy", predictor.probabilities(scores).cpu().numpy().astype(np.float16))
        if len(paths) < 2:
            print(f"{path} -> {out / (path.stem + '_labels.png')}, {out / (path.stem + '_overlay.png')}")
    seconds = time.perf_counter() - start
    print(f"{len(paths)} image(s) in {seconds:.1f} s ({len(paths) / max(seconds, 1e-9):.2f} images/s) -> {out}")
    return 0


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def _video_inputs(args: argparse.Namespace) -> list[Path]:
    """The videos among ``predict``'s inputs (then all of them must be videos), checked for
    PyAV and for image-only options; ``[]`` for images."""
    videos = [Path(item) for item in args.images if Path(item).suffix.lower() in VIDEO_SUFFIXES]
    if not videos:
        if getattr(args, "frames", False):
            raise ConfigError("--frames is for video inputs (.mp4, .avi, .mov, .mkv, .webm)")
        return []
    if len(videos) < len(args.images):
        raise DataError("pass videos or images to one predict, not both")
    if args.masks or args.probs:
        raise ConfigError("--masks and --probs are for images, not videos")
    from semseg.video import require_av

    require_av()
    return videos


def expand_inputs(items: list[str]) -> list[Path]:
    """Image paths from files, folders (their images, sorted) and glob patterns (``'frames/*.png'``)."""
    from semseg.data.folder import IMAGE_SUFFIXES

    suffixes = (*IMAGE_SUFFIXES, ".npy")
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.suffix.lower() in VIDEO_SUFFIXES:
            raise DataError(
                f"{item}: a video is predicted on its own (semseg predict {path.name} --model M), not among images"
            )
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes and p.is_file())
            if not found:
                raise DataError(f"no images ({', '.join(suffixes)}) in {path}")
            paths += found
        elif not path.exists() and any(c in item for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(item) if Path(p).suffix.lower() in suffixes)
            if not found:
                raise DataError(f"no images match {item!r}")
            paths += found
        else:
            paths.append(path)
    return paths


def _check_prediction_outputs(paths: list[Path], out: Path, overwrite: bool) -> None:
    """Refuse missing inputs, two inputs that would write the same outputs, and (unless
    ``overwrite``) outputs that exist from an earlier run."""
    stems: dict[str, Path] = {}
    for path in paths:
        try:
            path.stat()
        except FileNotFoundError:
            raise DataError(f"image not found: {path}") from None
        except OSError as exc:  # e.g. a symbolic link loop
            raise DataError(f"cannot read image {path}: {exc.strerror}") from None
        if not path.is_file():
            raise DataError(f"{path} is not an image file")
        if path.stem in stems and stems[path.stem] != path:
            raise DataError(
                f"{stems[path.stem]} and {path} would write the same outputs ({path.stem}_labels.png); "
                "predict them into separate --out folders"
            )
        stems[path.stem] = path
    taken = [out / f"{p.stem}_{kind}.png" for p in paths for kind in ("labels", "overlay")]
    taken = [t for t in taken if t.exists()]
    if taken and not overwrite:
        raise DataError(
            f"{taken[0]} exists (and {len(taken) - 1} more); pass --overwrite to replace earlier predictions"
        )


def cmd_list_models(args: argparse.Namespace) -> int:
    """``semseg list-models [PATTERN]``."""
    from semseg.models.registry import list_models

    for name in list_models(args.pattern):
        print(name)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``semseg bench --model NAME``: train-step and inference throughput, peak memory."""
    from semseg.bench import format_rows, measure_in_subprocess
    from semseg.models.registry import create_model, list_models

    if len(args.size) != 2 or min(args.size) < 1:
        raise ConfigError(f"--size expects H,W of positive integers, got {args.size}")
    if args.batch < 1 or args.iters < 1 or args.warmup < 0:
        raise ConfigError("--batch and --iters must be >= 1 and --warmup >= 0")
    if args.device != "cpu" and not (args.device.startswith("cuda") and torch.cuda.is_available()):
        raise ConfigError(
            f"--device {args.device} is not available here; allowed: cpu"
            + (", cuda" if torch.cuda.is_available() else "")
        )
    for name in args.model:
        if name not in list_models():
            create_model(name)  # raises UnknownModelError with suggestions
    rows = []
    for name in args.model:
        time_kw = {
            "size": args.size,
            "batch": args.batch,
            "device": args.device,
            "warmup": args.warmup,
            "iters": args.iters,
            "precision": args.precision,
        }
        result = measure_in_subprocess(
            "semseg:create_model", {"build": {"name": name, "num_classes": args.num_classes}, "time": time_kw}
        )
        rows.append({"name": name, **result})
    print(
        f"device {args.device}, input {args.batch}x3x{args.size[0]}x{args.size[1]}, {args.precision}, {args.num_classes} classes, median of {args.iters}"
    )
    print(format_rows(rows))
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    """``semseg results RUN|SHIPPED ...``: one markdown table of what the runs and shipped models
    measured (per-class IoU, mIoU, pixel accuracy, inference, command, training time, machine)."""
    from semseg.engine.checkpoint import find_checkpoint, read_meta
    from semseg.pretrained import list_shipped, shipped_folder, shipped_scores
    from semseg.report.results import results_table, rows_for_run, rows_for_shipped

    rows, class_names = [], None
    for source in args.sources:
        if not Path(source).exists() and source in list_shipped():
            rows += rows_for_shipped(source, shipped_scores(source))
            meta = read_meta(shipped_folder(source))
        else:
            if not Path(source).is_dir():
                raise DataError(f"not a run folder or shipped model: {source} (shipped: {', '.join(list_shipped())})")
            rows += rows_for_run(Path(source))
            meta = read_meta(find_checkpoint(source))
        class_names = class_names or meta.get("class_names")
    table = results_table(rows, class_names)
    if args.out:
        write_atomic(Path(args.out), table + "\n")
    else:
        print(table)
    return 0


def cmd_configs(args: argparse.Namespace) -> int:
    """``semseg configs [PATTERN]``: each installed recipe with the first line of its description."""
    import fnmatch

    from semseg.config import list_recipes

    recipes = {n: p for n, p in list_recipes().items() if args.pattern is None or fnmatch.fnmatch(n, args.pattern)}
    width = max((len(n) for n in recipes), default=0)
    for name, path in recipes.items():
        first = next((line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#")), "")
        print(f"{name:<{width}}  {first}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    """``semseg weights import FILE`` / ``semseg weights list``."""
    from semseg.models.backbones.weights import IMAGENET_FILES, find_imagenet_file, import_weights

    if args.weights_command == "convert":
        return cmd_weights_convert(args)
    if args.weights_command == "import":
        from semseg.models.backbones import BACKBONES, build_backbone
        from semseg.models.backbones.weights import backbone_for_file, load_backbone_weights

        if not Path(args.file).is_file():
            raise DataError(f"weights file not found: {args.file}")
        name = args.backbone or backbone_for_file(Path(args.file))
        if name is None or name not in BACKBONES:
            raise ConfigError(
                f"cannot tell the backbone of {Path(args.file).name}; pass --backbone ({', '.join(sorted(BACKBONES))})"
            )
        # Load strictly before caching, so a file that does not fit never enters the cache.
        load_backbone_weights(build_backbone(name), name, args.file)
        dest = import_weights(args.file)
        print(f"imported {args.file} -> {dest} (sha256 checked, loads strictly into {name})")
        return 0
    for name, filename in IMAGENET_FILES.items():
        where = find_imagenet_file(name)
        print(f"{name:12s} {filename:28s} {where or 'not on this machine'}")
    return 0


def cmd_weights_convert(args: argparse.Namespace) -> int:
    """``semseg weights convert FILE --from FORMAT``: forwards to :func:`semseg.api.convert_checkpoint`."""
    from semseg.api import convert_checkpoint
    from semseg.engine.checkpoint import load_checkpoint_model

    folder = convert_checkpoint(
        args.file, args.from_format, args.model, args.out, overwrite=args.overwrite, num_classes=args.num_classes
    )
    model = load_checkpoint_model(folder)
    print(f"converted {args.file} ({args.from_format}) -> {folder} ({model.model_name}, {model.num_labels} classes)")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """``semseg data check``: exit 0 when the tree is clean, 1 when problems were found.
    ``semseg data download``: the verified dataset folder, or a user error."""
    if args.data_command == "download":
        return _download(args)
    from semseg.data.check import check_dataset

    if not Path(args.root).is_dir():
        raise DataError(f"dataset folder not found: {args.root}")
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    report = check_dataset(
        args.dataset, args.root, args.split, classes=classes, max_images=args.max_images, binary=args.binary
    )
    print(report.format())
    return 0 if report.ok else 1


def _download(args: argparse.Namespace) -> int:
    import os

    from semseg.data.download import download_dataset
    from semseg.data.registry import DATA_ENV

    dest = args.dest or os.environ.get(DATA_ENV) or "data"
    root = download_dataset(args.dataset, dest, url=args.url, checksum=args.checksum)
    print(f"{args.dataset}: {root}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``semseg report RUN_DIR [RUN_DIR ...]``: PNG plots and one self-contained HTML page."""
    from semseg.report import make_report

    result = make_report(
        args.runs,
        args.out,
        evaluate=not args.no_eval,
        max_images=args.max_images,
        worst=args.worst,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    for path in result.files:
        print(path)
    print(f"report: {result.page}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``semseg export RUN_OR_MODEL --format onnx|torch-export``: see :mod:`semseg.export.cli_export`."""
    from semseg.export.cli_export import run_export

    return run_export(args)


def cmd_summary(args: argparse.Namespace) -> int:
    """``semseg summary MODEL``: per-stage shapes, strides, dilations, receptive fields,
    parameters and FLOPs of a registered model or of a run folder's model."""
    import yaml

    from semseg.summary import format_summary, summarize

    if len(args.size) != 2 or min(args.size) < 1:
        raise ConfigError(f"--size expects HxW of positive integers, got {args.size}")
    options: dict[str, Any] = {}
    for item in args.options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set-option expects KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set-option {key}: cannot read the value {value!r}") from None
    if Path(args.model).exists():
        from semseg.engine.checkpoint import find_checkpoint, model_from_meta, read_meta

        if options or args.num_classes is not None:
            raise ConfigError("a run folder fixes the model; drop --num-classes and --set-option")
        model = model_from_meta(read_meta(find_checkpoint(args.model)))
        label = f"{model.model_name} ({args.model})"
    else:
        from semseg.models import create_model

        num_classes = 21 if args.num_classes is None else args.num_classes
        model = create_model(args.model, num_classes=num_classes, **options)
        label = args.model
    height, width = args.size
    try:
        rows = summarize(model, (height, width))
    except RuntimeError as exc:  # e.g. an input too small for the network's strides
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{label} cannot run on a {height}x{width} input: {first[:200]}") from None
    channels = len(model.mean)
    print(f"{label}: input 1x{channels}x{height}x{width}, {model.num_classes} classes")
    print(format_summary(rows))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``semseg serve --model M``: the demo page on ``--host:--port`` until Ctrl-C."""
    from semseg.models import list_models
    from semseg.serve.app import run_server

    if not Path(args.model).exists() and args.model in list_models():  # a network name: random weights
        print(f"semseg: warning: {args.model} is an untrained model (random classifier)", file=sys.stderr)
    run_server(
        args.model,
        host=args.host,
        port=args.port,
        max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels,
        inference_options={"precision": PREDICT_PRECISION, **inference_options(args)},
    )
    return 0

"""The ``semseg`` command line: train | eval | predict | list-models | bench | weights | data |
report | summary | export | serve.

User errors (``SemsegError``: a missing file, an unknown model or config key, ...) print one line
``semseg: error: ...`` and exit with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from semseg.constants import PRECISIONS
from semseg.errors import Interrupted, SemsegError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage too)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected integers like 512 or 512,1024, got {text!r}") from exc
    return values * 2 if len(values) == 1 else values


def _add_inference_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("inference")
    g.add_argument("--mode", choices=["whole", "slide"], default=None, help="whole image or sliding window")
    g.add_argument("--crop", type=_ints, default=None, help="sliding-window crop H,W (or one number)")
    g.add_argument("--stride", type=_ints, default=None, help="sliding-window stride H,W (or one number)")
    g.add_argument("--scales", type=_floats, default=None, help="multi-scale factors, e.g. 0.5,0.75,1,1.25,1.5,1.75")
    g.add_argument("--flip", action="store_true", default=None, help="add horizontally flipped predictions")
    g.add_argument("--crf", action="store_true", default=None, help="refine with the dense CRF")
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="autocast of the forward passes (predict, serve: auto = bf16 where native, else fp32; eval: fp32)",
    )
    g.add_argument(
        "--threshold", type=float, default=None, help="binary models: foreground above this probability (0.5)"
    )


def _add_overrides(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config key, e.g. {example}",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="semseg", description="Semantic segmentation: train, evaluate, predict.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train a model (default: the embedded CamVid sample, ~1 min on CPU)")
    p.add_argument("--config", help="a recipe name (semseg configs), or a YAML file")
    _add_overrides(p, "data.root=PATH")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the run in this folder from its last checkpoint; 'auto': the config's run folder if it has one",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing run of the same name")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser("eval", help="evaluate a checkpoint on a dataset split")
    p.add_argument("checkpoint", help="run folder, checkpoint folder or shipped model name (camvid)")
    _add_overrides(p, "data.root=PATH (the checkpoint's config is the base)")
    p.add_argument("--data-root", default=None, help="the dataset folder (same as --set data.root=DIR)")
    p.add_argument("--split", default=None, help="dataset split (default: the config's val split)")
    p.add_argument("--out", default=None, help="write metrics.json and per_class.txt here")
    p.add_argument("--no-progress", action="store_true")
    _add_inference_args(p)

    p = sub.add_parser(
        "recalibrate-bn",
        help="re-estimate batch-norm statistics on whole training images (a new checkpoint; weights unchanged)",
    )
    p.add_argument("checkpoint", help="run folder, checkpoint folder or shipped model name (camvid)")
    p.add_argument("--data-root", default=None, help="the dataset folder (default: the checkpoint's config)")
    p.add_argument("--split", default=None, help="dataset split (default: the config's train split)")
    p.add_argument("--images", type=int, default=None, help="use this many images, spread over the split (default all)")
    p.add_argument("--batch-size", type=int, default=4, help="images per forward pass (default 4, at least 2)")
    p.add_argument("--weights", choices=["model", "ema"], default="model", help="the weights to start from")
    p.add_argument("--out", default=None, help="checkpoint folder to write (default RUN/checkpoints/bn_recalibrated)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("predict", help="write label maps and colour overlays for images or videos")
    p.add_argument(
        "images", nargs="+", help="image files, folders or glob patterns ('frames/*.png'); or video files (needs PyAV)"
    )
    p.add_argument(
        "--model", required=True, help="a run or checkpoint folder, a shipped model (camvid), or a registered network"
    )
    p.add_argument("--out", default="predictions", help="output folder (default: predictions)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier predictions of the same names")
    p.add_argument("--masks", default=None, help="folder of ground-truth masks (same stems): adds a panel per image")
    p.add_argument("--probs", action="store_true", help="also save class probabilities (float16 .npy, C x H x W)")
    p.add_argument(
        "--frames",
        action="store_true",
        help="video inputs: also save each frame's label PNG as OUT/<stem>/<stem>_000001.png",
    )
    p.add_argument(
        "--backend",
        choices=["torch", "onnxruntime"],
        default="torch",
        help="run the network in PyTorch (default) or in ONNX Runtime (needs semseg[onnx]) on its `semseg export`, "
        "or exported in memory first where there is none",
    )
    p.add_argument("--no-progress", action="store_true")
    _add_inference_args(p)

    p = sub.add_parser("results", help="a markdown results table from run folders' and shipped models' scores")
    p.add_argument(
        "sources", nargs="+", help="run folders (their metrics.json and eval/*/metrics.json) or shipped names"
    )
    p.add_argument("--out", default=None, help="write the table to this file (atomically) instead of printing it")

    p = sub.add_parser("configs", help="the training recipes installed with semseg (use with train --config NAME)")
    p.add_argument("pattern", nargs="?", default=None, help="fnmatch pattern, e.g. 'camvid/*'")

    p = sub.add_parser("list-models", help="registered model names")
    p.add_argument("pattern", nargs="?", default=None, help="fnmatch pattern, e.g. 'deeplab*'")

    p = sub.add_parser("bench", help="train-step and inference throughput and peak memory")
    p.add_argument("--model", required=True, action="append", help="model name (repeatable)")
    p.add_argument("--size", type=_ints, default=[512, 512], help="input H,W (default 512)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--num-classes", type=int, default=21)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help="as train.precision (default auto)")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)

    p = sub.add_parser("weights", help="manage offline pretrained weights")
    wsub = p.add_subparsers(dest="weights_command", required=True, parser_class=_Parser)
    w = wsub.add_parser("import", help="check a weights file's hash and copy it into the cache")
    w.add_argument("file")
    w.add_argument("--backbone", default=None, help="backbone name (default: guessed from the file name)")
    wsub.add_parser("list", help="known ImageNet files and where they are found")
    w = wsub.add_parser("convert", help="a published checkpoint (torchvision, mmseg, authors') -> a semseg checkpoint")
    w.add_argument("file", help="the foreign checkpoint (.pth, .pt or .safetensors; never executed)")
    w.add_argument(
        "--from",
        dest="from_format",
        required=True,
        help="torchvision, mmseg, hrnet (HRNet-Semantic-Segmentation), hszhao (hszhao/semseg PSPNet), encoding"
        " (PyTorch-Encoding EncNet) or kazuto (kazuto1011/deeplab-pytorch DeepLab v2)",
    )
    w.add_argument("--model", default=None, help="the source network (default: recognised from the keys)")
    w.add_argument("--out", default=None, help="checkpoint folder to write (default: FILE_STEM_semseg beside FILE)")
    w.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint folder at --out")
    w.add_argument("--num-classes", type=int, default=None, help="refuse a checkpoint with another class count")

    p = sub.add_parser("data", help="inspect and download datasets")
    dsub = p.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    c = dsub.add_parser(
        "check", help="walk a dataset tree: missing pairs, size mismatches, bad labels, class statistics"
    )
    c.add_argument("root")
    c.add_argument("--dataset", required=True, help="voc, ade20k, cityscapes, camvid or folder")
    c.add_argument("--split", action="append", default=None, help="split to check (repeatable; default train and val)")
    c.add_argument("--classes", default=None, help="comma-separated class names (folder datasets)")
    c.add_argument("--max-images", type=int, default=None, help="check at most this many pairs per split")
    c.add_argument("--binary", action="store_true", help="binary masks: 0; 1 or 255 foreground; 128 ignored")
    d = dsub.add_parser("download", help="fetch a public dataset, verify it and unpack it (camvid, voc, sbd, ade20k)")
    d.add_argument("dataset", help="camvid, voc, sbd or ade20k")
    d.add_argument("dest", nargs="?", default=None, help="parent folder (default: $SEMSEG_DATA, else ./data)")
    d.add_argument("--url", default=None, help="another address of the same archive (a mirror, or file://)")
    d.add_argument("--checksum", default=None, help="the archive's checksum, e.g. sha256:HEX")

    p = sub.add_parser("report", help="plots and one self-contained HTML page for run folders (needs matplotlib)")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders; several make one page comparing them")
    p.add_argument(
        "--out", default=None, help="report folder (default RUN_DIR/report; several runs: report-A-vs-B beside them)"
    )
    p.add_argument("--max-images", type=int, default=None, help="evaluate at most N val images (default: the run's)")
    p.add_argument("--worst", type=int, default=4, help="worst-predicted val images to show per run (default 4)")
    p.add_argument("--no-eval", action="store_true", help="plots from the logs only: no checkpoint, no dataset")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an existing report")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("summary", help="per stage: output shape, stride, dilations, receptive field, parameters, FLOPs")
    p.add_argument("model", help="a registered model name or a run folder")
    p.add_argument("--size", type=_ints, default=[512, 512], help="input HxW (default 512x512)")
    p.add_argument("--num-classes", type=int, default=None, help="classes of a registered model (default 21)")
    p.add_argument(
        "--set-option",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a builder option of a registered model, e.g. output_stride=16 (repeatable)",
    )

    p = sub.add_parser("export", help="a model as ONNX or a torch.export program, checked against PyTorch")
    p.add_argument(
        "model",
        metavar="RUN_OR_MODEL",
        help="a run or checkpoint folder, a shipped model (camvid), or a registered network (random weights)",
    )
    p.add_argument("--format", choices=["onnx", "torch-export"], default="onnx", help="default onnx")
    p.add_argument("--out", default=None, help="output file (default RUN/model.onnx, or NAME.onnx here; .pt2)")
    p.add_argument(
        "--size", type=_ints, default=[512, 512], help="HxW of the example input; the fixed size where one is needed"
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--num-classes", type=int, default=None, help="classes of a registered network (default 21)")
    p.add_argument("--dynamo", action="store_true", help="ONNX through torch.export (slow; exports SegNet's unpooling)")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch on two input sizes")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")

    p = sub.add_parser("serve", help="a local web page to try a model on uploaded images (needs gradio)")
    p.add_argument("--model", required=True, help="a run folder, a checkpoint folder or a shipped model's name")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload in MB (default 20)")
    p.add_argument(
        "--max-pixels", type=int, default=4096 * 4096, help="largest image, width x height (default 4096x4096)"
    )
    _add_inference_args(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0, 1 for ``data check`` findings, 2 for a
    user error, 130 when interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except SemsegError as exc:
        print(f"semseg: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:  # training saved a checkpoint and says how to resume
        print(f"semseg: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("semseg: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from semseg import commands

    handlers = {
        "train": commands.cmd_train,
        "eval": commands.cmd_eval,
        "recalibrate-bn": commands.cmd_recalibrate_bn,
        "predict": commands.cmd_predict,
        "list-models": commands.cmd_list_models,
        "configs": commands.cmd_configs,
        "results": commands.cmd_results,
        "bench": commands.cmd_bench,
        "weights": commands.cmd_weights,
        "data": commands.cmd_data,
        "report": commands.cmd_report,
        "summary": commands.cmd_summary,
        "export": commands.cmd_export,
        "serve": commands.cmd_serve,
    }
    return handlers[args.command](args)  # argparse has refused any other command


if __name__ == "__main__":
    raise SystemExit(main())

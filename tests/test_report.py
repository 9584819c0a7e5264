"""`semseg report`: the PNG files and the self-contained HTML page of a tiny real run, the
comparison page, refusals in one line; and `semseg summary` of a run folder."""

from __future__ import annotations

import base64
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semseg.cli import main
from semseg.errors import DataError

SINGLE = ["loss.png", "lr.png", "miou.png", "per_class_iou.png", "confusion.png", "worst_images.png"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run folder: 3 iterations on 48x48 crops, 2 val images, logged every iteration."""
    tmp = tmp_path_factory.mktemp("runs")
    argv = ["train", "--set", "train.iterations=3", "--set", "data.crop_size=[48,48]", "--set", "data.batch_size=2"]
    argv += ["--set", "model.options.backbone_weights=null", "--set", "data.max_val_images=2"]
    argv += ["--set", "train.precision=fp32", "--set", "train.log_every=1", "--set", f"output.dir={tmp}"]
    argv += ["--set", "output.name=r", "--no-progress"]
    assert main(argv) == 0
    return tmp / "r"


@pytest.fixture(scope="module")
def matplotlib_installed() -> None:
    pytest.importorskip("matplotlib")


def _check_png(path: Path) -> tuple[int, int]:
    assert path.is_file(), path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert 200 <= width <= 4000 and 150 <= height <= 4000, (path.name, width, height)
    assert path.stat().st_size < 1_000_000, path
    return width, height


def _check_page(page: Path, pngs: list[Path]) -> str:
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    for png in pngs:  # every plot, embedded byte for byte
        assert "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode() in text, png.name
    assert text.count("<img ") == len(pngs)
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text
    return text


def test_report_of_one_run(run: Path, matplotlib_installed: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run), "--no-progress"]) == 0
    out = run / "report"
    assert sorted(p.name for p in out.iterdir()) == sorted([*SINGLE, "report.html"])
    for name in SINGLE:
        _check_png(out / name)
    text = _check_page(out / "report.html", [out / n for n in SINGLE])
    assert "semseg report: r" in text
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out


def test_the_evaluation_is_the_runs(run: Path, matplotlib_installed: None, tmp_path: Path) -> None:
    """The report's evaluation of the last checkpoint repeats the run's final one (same weights,
    same 2 val images), and its confusion matrix counts every labelled pixel once."""
    from semseg.data import build_dataset
    from semseg.report import make_report

    result = make_report([run], tmp_path / "rep", worst=2)
    ev = result.evaluations["r"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert ev.images == 2
    assert ev.scores["miou"] == pytest.approx(metrics["miou"], abs=1e-9)
    val = build_dataset("sample", None, "val")
    labelled = sum(int((val[i][1] != 255).sum()) for i in range(2))
    assert ev.confusion.shape == (11, 11) and int(ev.confusion.sum()) == labelled
    assert [w.miou for w in ev.worst] == sorted(w.miou for w in ev.worst)
    assert ev.worst[0].image.shape[2] == 3 and ev.worst[0].prediction.shape == ev.worst[0].target.shape


def test_refuses_to_overwrite_a_report(
    run: Path, matplotlib_installed: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from semseg.report import make_report

    out = tmp_path / "rep"
    assert main(["report", str(run), "--out", str(out), "--no-eval"]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(out), "--no-eval"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--overwrite" in err and len(err.splitlines()) == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    with pytest.raises(DataError):
        make_report([run], out, evaluate=False)
    assert main(["report", str(run), "--out", str(out), "--no-eval", "--overwrite"]) == 0


def test_no_eval_plots_the_logs_only_and_overwrite_drops_stale_plots(
    run: Path, matplotlib_installed: None, tmp_path: Path
) -> None:
    out = tmp_path / "rep"
    assert main(["report", str(run), "--out", str(out), "--max-images", "1", "--worst", "1", "--no-progress"]) == 0
    assert (out / "confusion.png").is_file()
    assert main(["report", str(run), "--out", str(out), "--no-eval", "--overwrite"]) == 0
    names = ["loss.png", "lr.png", "miou.png", "per_class_iou.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "report.html"])
    _check_page(out / "report.html", [out / n for n in names])


def test_comparison_page_of_two_runs(run: Path, matplotlib_installed: None, tmp_path: Path) -> None:
    from semseg.report import default_out, load_run
    from semseg.report.plots import loss_figure, per_class_figure

    other = tmp_path / "r2"
    shutil.copytree(run, other, ignore=shutil.ignore_patterns("report"))
    with open(other / "log.jsonl", "a") as f:  # a longer second run
        f.write(json.dumps({"iteration": 4, "lr": 1e-5, "main": 2.0, "loss": 2.0, "wall_s": 1.0, "cpu_s": 1.0}) + "\n")
    out = tmp_path / "compare"
    argv = ["report", str(run), str(other), "--out", str(out), "--max-images", "1", "--worst", "1", "--no-progress"]
    assert main(argv) == 0
    pngs = ["loss.png", "lr.png", "miou.png", "per_class_iou.png"]
    pngs += ["confusion_r.png", "confusion_r2.png", "worst_images_r.png", "worst_images_r2.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*pngs, "report.html"])
    for name in pngs:
        _check_png(out / name)
    text = _check_page(out / "report.html", [out / n for n in pngs])
    assert "semseg report: r vs r2" in text
    # Curves overlaid (one line per run), per-class IoU side by side (one bar series per run).
    runs = [load_run(run), load_run(other)]
    runs[1].name = "r2"
    assert [line.get_label() for line in loss_figure(runs).axes[0].get_lines()] == ["r", "r2"]
    bars = per_class_figure({r.name: r.per_class_iou() for r in runs}).axes[0].containers
    assert len(bars) == 2 and len(bars[0]) == 11
    assert default_out([run, other]) == run.parent / "report-r-vs-r2"


def test_run_folder_without_logs(
    tmp_path: Path, matplotlib_installed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    for folder, message in ((tmp_path / "empty", "has no log.jsonl"), (tmp_path / "missing", "run folder not found")):
        assert main(["report", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_logs_without_a_checkpoint(
    run: Path, tmp_path: Path, matplotlib_installed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs_only = tmp_path / "logs_only"
    logs_only.mkdir()
    for name in ("log.jsonl", "eval.jsonl", "config.yaml"):
        shutil.copy(run / name, logs_only / name)
    with open(logs_only / "log.jsonl", "a") as f:
        f.write('{"iteration": 9, "lo')  # a run stopped mid-write: the broken last line is skipped
    assert main(["report", str(logs_only)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no checkpoint" in err and len(err.splitlines()) == 1
    assert main(["report", str(logs_only), "--no-eval"]) == 0
    assert sorted(p.name for p in (logs_only / "report").iterdir()) == ["loss.png", "lr.png", "miou.png", "report.html"]


def test_without_matplotlib_one_line(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["report", str(run), "--no-eval", "--out", str(run.parent / "nomatplotlib")]) == 2
    err = capsys.readouterr().err.strip()
    assert 'pip install "semseg[report]"' in err and len(err.splitlines()) == 1
    assert not (run.parent / "nomatplotlib").exists()


def test_confusion_figure_normalises_rows(matplotlib_installed: None) -> None:
    from semseg.report.plots import confusion_figure

    counts = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    image = confusion_figure(counts, ["a", "b", "c"]).axes[0].get_images()[0].get_array()
    assert np.allclose(image[0], [0.75, 0.25, 0]) and np.allclose(image[2], [0.25, 0.25, 0.5])
    assert np.ma.getmaskarray(image)[1].all()  # no ground truth of "b": a blank row, not zeros


def test_summary_of_a_run_folder(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(run), "--size", "32x32"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"deeplabv3plus_mobilenetv2 ({run}): input 1x3x32x32, 11 classes")
    assert "global" in out  # ASPP's image pooling
    assert main(["summary", str(run), "--num-classes", "3"]) == 2
    assert "fixes the model" in capsys.readouterr().err

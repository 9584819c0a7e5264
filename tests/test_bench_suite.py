"""The benchmark suite's --quick mode runs every section end to end at tiny size and writes
one markdown file with every table, its ratios and its goal verdicts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_quick_suite_writes_every_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pydensecrf.densecrf", reason="the CRF table needs pydensecrf2 (extra 'bench')")
    pytest.importorskip("torchmetrics", reason="the confusion table needs torchmetrics (extra 'bench')")
    import run_all

    # A tiny stand-in pair instead of the ResNet-50 models (seconds, not minutes), and a tiny slide model.
    tiny = run_all.Arch("tiny", "naive convnet (test stand-in)", {"name": "naive_convnet"}, "semseg:naive_convnet")
    monkeypatch.setattr(run_all, "ARCHS", [tiny])
    monkeypatch.setattr(run_all, "SLIDE_MODEL", "naive_convnet")
    monkeypatch.setattr(run_all, "CAMVID", tmp_path / "no-camvid")
    out = tmp_path / "benchmarks.md"
    assert run_all.main(["--quick", "--no-memory", "--out", str(out)]) == 0
    text = out.read_text()
    for heading in (
        "## Models on CPU",
        "## Runtimes on CPU",
        "## Confusion matrix vs torchmetrics",
        "## Dense CRF vs pydensecrf2, idle and with one competing busy process",
        "## Sliding window on CPU",
        "## Data pipeline per worker",
    ):
        assert heading in text, heading
    assert "QUICK smoke run" in text and "Versions: python" in text
    assert "naive convnet (test stand-in)" in text and "goal 1.5x:" in text and "goal 1.2x:" in text
    assert "| idle (load avg" in text and "| loaded (load avg" in text
    assert "skipped: CamVid not found" in text
    assert "| PyTorch fast path, float32 |" in text
    if importlib.util.find_spec("onnxruntime") is not None:  # the opt-in runtime rows
        assert "| semseg exported, ONNX Runtime (fp32) |" in text and "| ONNX Runtime, float32 |" in text


def test_unknown_section_is_refused() -> None:
    import run_all

    with pytest.raises(SystemExit):
        run_all.main(["--sections", "nope", "--out", "-"])

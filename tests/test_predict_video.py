"""``semseg predict clip.mp4``: the overlay video, the per-frame palette PNGs, the images/s line,
no overwriting, and one-line errors for a non-video and for a missing PyAV."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semseg.cli import main

FRAMES, WIDTH, HEIGHT = 6, 64, 48


def _make_video(path: Path) -> None:
    av = pytest.importorskip("av", reason="video tests need PyAV (pip install av)")
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for _ in range(FRAMES):
            # Coloured blocks, not noise: something the encoder keeps and the model can label.
            blocks = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
            frame = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    _make_video(path)
    return path


def test_overlay_video_frames_and_rate(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import av

    out = tmp_path / "o"
    argv = ["predict", str(clip), "--model", "camvid", "--out", str(out), "--frames", "--no-progress"]
    assert main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"{FRAMES} frame(s) in") and "images/s" in last, last

    with av.open(str(out / "clip_overlay.mp4")) as video:
        stream = video.streams.video[0]
        assert stream.average_rate == 5
        decoded = [f.to_ndarray(format="rgb24") for f in video.decode(stream)]
    assert len(decoded) == FRAMES
    assert all(f.shape == (HEIGHT, WIDTH, 3) for f in decoded)
    assert not list(out.glob(".*tmp*")), "the temporary video was left behind"

    pngs = sorted((out / "clip").glob("clip_*.png"))
    assert [p.name for p in pngs] == [f"clip_{i:06d}.png" for i in range(1, FRAMES + 1)]
    with Image.open(pngs[0]) as first:
        assert first.mode == "P" and first.size == (WIDTH, HEIGHT)
        labels = np.asarray(first)
    # The overlay blends the label colours in: where the frame is labelled, it is not the input.
    from semseg import load_model
    from semseg.viz import colorize

    colours = colorize(labels, load_model("camvid").palette).astype(int)
    with av.open(str(clip)) as source:
        original = next(source.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    # overlay = (image + colour) / 2; mpeg4 is lossy, so compare within a generous tolerance.
    expected = (original + colours) / 2
    assert np.abs(decoded[0].astype(int) - expected).mean() < 12
    assert np.abs(decoded[0].astype(int) - original).mean() > np.abs(decoded[0].astype(int) - expected).mean()

    # A second run into the same folder is refused, then allowed with --overwrite.
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "clip_overlay.mp4 exists" in err[0] and "--overwrite" in err[0], err
    assert main([*argv, "--overwrite"]) == 0


def test_text_file_named_mp4_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("av", reason="video tests need PyAV (pip install av)")
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 20)
    out = tmp_path / "o"
    assert main(["predict", str(fake), "--model", "camvid", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "notes.mp4" in err[0] and "cannot read video" in err[0], err
    assert not (out / "notes_overlay.mp4").exists() and not list(out.glob(".*tmp*"))


def test_missing_video_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("av", reason="video tests need PyAV (pip install av)")
    assert main(["predict", str(tmp_path / "gone.mp4"), "--model", "camvid", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "video not found" in err[0] and "gone.mp4" in err[0], err


def test_without_pyav_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    assert main(["predict", str(tmp_path / "clip.mp4"), "--model", "camvid", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'reading video needs PyAV: pip install "semseg[video]"' in err[0], err


def test_video_and_image_options_do_not_mix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("av", reason="video tests need PyAV (pip install av)")
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    assert main(["predict", str(image), "--model", "camvid", "--out", str(tmp_path / "o"), "--frames"]) == 2
    assert "--frames is for video inputs" in capsys.readouterr().err
    assert main(["predict", str(image), "clip.mp4", "--model", "camvid", "--out", str(tmp_path / "o")]) == 2
    assert "not both" in capsys.readouterr().err

"""The demo page's logic without a browser: upload checks (size before decoding, pixels from the
header), area shares that add up to 100 %, the overlay with class toggles and opacity, the share
table, the model session, and ``semseg serve`` without gradio."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import semseg
from semseg.cli import main
from semseg.data import SAMPLE_ROOT, build_dataset
from semseg.data.io import read_image
from semseg.engine.checkpoint import checkpoint_meta, save_checkpoint
from semseg.errors import DataError, InvalidOptionError
from semseg.serve import DemoModel, UploadLimits, area_shares, read_upload, render_overlay, shares_table_html
from semseg.serve import upload as upload_module
from semseg.viz import overlay

FRAME = sorted((SAMPLE_ROOT / "val").glob("*.jpg"))[0]


def tiny_camvid_model() -> semseg.SegmentationModel:
    """A CamVid-classed model small enough to predict a sample frame in milliseconds (random
    weights: what matters here is the plumbing, not the masks)."""
    data = build_dataset("sample", None, "val")
    torch.manual_seed(0)
    model = semseg.create_model("naive_convnet", num_classes=data.num_classes, width=8, depth=2)
    model.set_metadata(data.classes, data.palette)
    return model.eval()


# ---- area shares ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_area_shares_add_up_to_exactly_100(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Skewed class frequencies on an awkward pixel count (7 x 13): plain rounding drifts off 100.
    labels = rng.choice(6, size=(7, 13), p=[0.5, 0.2, 0.15, 0.1, 0.04, 0.01])
    names = [f"c{i}" for i in range(6)]
    shares = area_shares(labels, names)
    assert round(sum(s.percent for s in shares) * 100) == 10000
    counts = np.bincount(labels.ravel(), minlength=6)
    for s in shares:
        assert s.pixels == counts[s.class_id] and s.name == f"c{s.class_id}"
        assert abs(s.percent - 100 * s.pixels / labels.size) < 0.01  # off by at most one unit
    assert [s.pixels for s in shares] == sorted((s.pixels for s in shares), reverse=True)
    assert {s.class_id for s in shares} == set(np.flatnonzero(counts).tolist())  # only classes present


def test_area_shares_thirds_and_edge_cases() -> None:
    thirds = area_shares(torch.tensor([[0, 1, 2]]), ["a", "b", "c"])
    assert sorted(s.percent for s in thirds) == [33.33, 33.33, 33.34]
    assert [(s.name, s.percent) for s in area_shares(np.zeros((4, 4), np.int64), ["only"])] == [("only", 100.0)]
    assert area_shares(np.zeros((0, 3), np.int64), ["a"]) == []
    assert area_shares(np.array([[0, 7]]), ["a"])[1].name == "label 7"  # an id without a name


# ---- overlay with toggles and opacity ------------------------------------------------------


def test_render_overlay_colours_only_visible_classes() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, (6, 8))
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    full = render_overlay(image, labels, palette, [0, 1, 2], 0.5)
    np.testing.assert_array_equal(full, overlay(image, labels, palette, alpha=0.5))
    partial = render_overlay(image, labels, palette, [1], 0.5)
    np.testing.assert_array_equal(partial[labels == 1], full[labels == 1])
    np.testing.assert_array_equal(partial[labels != 1], image[labels != 1])  # hidden: the image unchanged
    solid = render_overlay(image, labels, palette, [0, 1, 2], 1.0)
    np.testing.assert_array_equal(solid, np.asarray(palette, np.uint8)[labels])
    np.testing.assert_array_equal(render_overlay(image, labels, palette, [0, 1, 2], 0.0), image)
    np.testing.assert_array_equal(render_overlay(image, labels, palette, [], 0.7), image)
    with pytest.raises(ValueError, match="opacity"):
        render_overlay(image, labels, palette, [0], 1.5)
    with pytest.raises(ValueError, match="do not match"):
        render_overlay(image, labels[:3], palette, [0], 0.5)


def test_share_table_escapes_names_and_shows_the_total() -> None:
    shares = area_shares(np.array([[0, 0, 1]]), ["<b>road</b>", "car & co"])
    page = shares_table_html(shares, [(1, 2, 3), (4, 5, 6)])
    assert "<b>road</b>" not in page and "&lt;b&gt;road&lt;/b&gt;" in page and "car &amp; co" in page
    assert page.count('<td class="share">') == 2 and '<td class="total">100.00</td>' in page
    assert "rgb(1, 2, 3)" in page and "66.67" in page and "33.33" in page


# ---- upload checks -------------------------------------------------------------------------


def test_upload_reads_an_image_like_read_image(tmp_path: Path) -> None:
    image = read_upload(FRAME, UploadLimits())
    assert image.dtype == torch.uint8 and torch.equal(image, read_image(FRAME))


def test_an_upload_over_the_size_cap_is_refused_before_it_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(big)
    size = big.stat().st_size

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened although it is over the cap")

    monkeypatch.setattr(upload_module.Image, "open", never)
    monkeypatch.setattr(upload_module, "read_image", never)
    with pytest.raises(DataError, match=r"big\.png is .* over this page's upload limit"):
        read_upload(big, UploadLimits(max_bytes=size - 1))


def test_an_image_over_the_pixel_cap_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = tmp_path / "wide.png"
    Image.new("RGB", (100, 60)).save(wide)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the image was decoded although it is over the cap")

    monkeypatch.setattr(upload_module, "read_image", never)
    with pytest.raises(DataError, match=r"wide\.png is 100 x 60 = 6,000 pixels, over this page's limit of 5,999"):
        read_upload(wide, UploadLimits(max_pixels=5999))


def test_uploads_that_are_not_images(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    with pytest.raises(DataError, match=r"notes\.txt is not an image: upload a PNG, JPEG"):
        read_upload(text, UploadLimits())
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.png is empty"):
        read_upload(empty, UploadLimits())
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(FRAME.read_bytes()[:2000])  # a valid header, the pixels cut short
    with pytest.raises(DataError, match=r"cut\.jpg could not be decoded"):
        read_upload(cut, UploadLimits())
    # The name shown is the one the person chose, not the server's temporary path.
    with pytest.raises(DataError, match=r"^holiday\.txt is not an image"):
        read_upload(text, UploadLimits(), name="holiday.txt")
    with pytest.raises(DataError, match="positive"):
        UploadLimits(max_bytes=0)


# ---- the session: model + upload -> overlay, shares ----------------------------------------


def test_demo_model_analyses_a_camvid_frame() -> None:
    demo = DemoModel(tiny_camvid_model())
    analysis = demo.analyse(FRAME)
    h, w = analysis.image.shape[:2]
    assert (h, w) == analysis.labels.shape == (180, 240)
    assert round(sum(s.percent for s in analysis.shares) * 100) == 10000
    assert {s.name for s in analysis.shares} <= set(demo.class_names)
    assert analysis.name == FRAME.name and analysis.seconds > 0
    shown = demo.overlay(analysis, None, 0.5)
    assert shown.shape == (h, w, 3) and not np.array_equal(shown, analysis.image)
    np.testing.assert_array_equal(demo.overlay(analysis, [], 0.5), analysis.image)
    assert demo.shares_html(analysis).count('<td class="share">') == len(analysis.shares)
    assert demo.summary(analysis).startswith(f"{FRAME.name}: 240 x 180 pixels")


def test_demo_model_refuses_a_multiband_model() -> None:
    model = semseg.create_model("naive_convnet", num_classes=2, width=4, depth=1, in_channels=4)
    model.set_metadata(["a", "b"], [(0, 0, 0), (1, 1, 1)], (0.5,) * 4, (0.25,) * 4)
    with pytest.raises(InvalidOptionError, match="4 input bands"):
        DemoModel(model)


def test_serve_without_gradio_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_camvid_model()
    save_checkpoint(tmp_path / "ckpt", model, checkpoint_meta(model, channels_last=False))
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio now raises ImportError
    assert main(["serve", "--model", str(tmp_path / "ckpt")]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip() == 'semseg: error: semseg serve needs gradio, which is not installed: pip install "semseg[serve]"'
    )

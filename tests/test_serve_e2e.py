"""``semseg serve`` end to end, as a person uses it: the server started by the command on a free
localhost port, the page driven in Debian's headless Chromium (Playwright). Upload a CamVid frame,
see the overlay and the class shares (adding up to 100 %), switch a class off, set the opacity,
then upload a text file and read the error on the page, then a file over the upload cap.

Needs gradio, playwright (``pip install "semseg[e2e]"``) and ``/usr/bin/chromium``
(``apt-get install chromium``, which ``.ci/run`` does where apt works); skipped with the reason
otherwise.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semseg.data import SAMPLE_ROOT, build_dataset
from semseg.serve.browser import (
    chromium_page,
    free_port,
    missing_tools,
    read_shares,
    serving,
    set_opacity,
    upload,
    wait_for_new_overlay,
    wait_for_overlay,
)

FRAME = sorted((SAMPLE_ROOT / "val").glob("*.jpg"))[0]
MISSING = missing_tools()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"browser test skipped: {MISSING}")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight CamVid-classed model saved as a checkpoint folder."""
    import torch

    import semseg
    from semseg.engine.checkpoint import checkpoint_meta, save_checkpoint

    data = build_dataset("sample", None, "val")
    torch.manual_seed(0)
    model = semseg.create_model("naive_convnet", num_classes=data.num_classes, width=8, depth=2)
    model.set_metadata(data.classes, data.palette)
    folder = tmp_path_factory.mktemp("serve") / "tiny_camvid"
    save_checkpoint(folder, model, checkpoint_meta(model, channels_last=False))
    return folder


def _overlay_pixels(page, src: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    response = page.request.get(src)
    assert response.ok, src
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("RGB"))


def test_upload_a_frame_see_overlay_and_shares_then_a_text_file(checkpoint: Path, tmp_path: Path) -> None:
    frame = np.asarray(Image.open(FRAME).convert("RGB"))
    with serving(checkpoint, free_port(), ["--max-upload-mb", "1"]) as url, chromium_page(tmp_path / "profile") as page:
        page.goto(url)
        page.get_by_text("Upload an image").first.wait_for()

        upload(page, FRAME)
        shown = wait_for_overlay(page)
        assert (shown["width"], shown["height"]) == (frame.shape[1], frame.shape[0])
        first = _overlay_pixels(page, shown["src"])
        assert first.shape == frame.shape and np.abs(first.astype(int) - frame).mean() > 5  # colours laid over

        shares = read_shares(page)
        assert shares and abs(sum(p for _, p in shares) - 100.0) < 1e-6, shares
        assert page.locator("#shares-table td.total").inner_text() == "100.00"
        names = {n for n, _ in shares}
        assert names <= set(build_dataset("sample", None, "val").classes)
        assert page.locator("#status").inner_text().startswith(f"{FRAME.name}: 240 x 180 pixels")

        # Switch the largest class off: its pixels show the image again, the model does not rerun.
        largest = shares[0][0]
        page.locator("#classes").get_by_label(largest, exact=True).uncheck()
        second = _overlay_pixels(page, wait_for_new_overlay(page, shown["src"]))
        assert np.abs(second.astype(int) - frame).mean() < np.abs(first.astype(int) - frame).mean()

        # Opacity 0: the picture is the frame itself, pixel for pixel.
        set_opacity(page, 0)
        np.testing.assert_array_equal(_overlay_pixels(page, page.locator("#overlay img").get_attribute("src")), frame)

        # A file that is not an image: a clear message on the page, no overlay left.
        text = tmp_path / "notes.txt"
        text.write_text("a shopping list, not a picture\n")
        page.locator("#upload button[aria-label=Clear]").click()
        upload(page, text)
        message = page.locator("#status").get_by_text("not an image")
        message.wait_for()
        assert "notes.txt is not an image" in message.inner_text()
        assert page.locator("#overlay img").count() == 0

        # Over the upload cap (--max-upload-mb 1): refused as it arrives, before semseg sees it.
        big = tmp_path / "big.png"
        big.write_bytes(bytes(1536 * 1024))
        page.locator("#upload button[aria-label=Clear]").click()
        upload(page, big)
        page.get_by_text("exceed the maximum allowed size").first.wait_for()
        assert page.locator("#overlay img").count() == 0
        assert page.offsite == [], page.offsite  # nothing was fetched from outside the machine

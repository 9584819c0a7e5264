"""The docs' picture of the demo page, made the way a person sees it:
``python -m semseg.serve.screenshot --model RUN --out docs/images/serve.png``.

Starts ``semseg serve`` on a free localhost port, opens the page in headless Chromium
(:mod:`semseg.serve.browser`), uploads a CamVid frame shipped with the package, waits for the
overlay and saves a PNG of the page. Needs gradio, playwright and ``/usr/bin/chromium``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from semseg.data import SAMPLE_ROOT
from semseg.errors import DataError, SemsegError
from semseg.serve.browser import (
    chromium_page,
    free_port,
    missing_tools,
    read_shares,
    serving,
    set_opacity,
    upload,
    wait_for_overlay,
)

DEFAULT_FRAME = SAMPLE_ROOT / "val" / "0016E5_07959.jpg"


def take_screenshot(
    model: str, out: Path, image: Path = DEFAULT_FRAME, opacity: float | None = None, overwrite: bool = False
) -> list[tuple[str, float]]:
    """Save a PNG of the page after ``image`` was uploaded; the class shares it showed."""
    if out.exists() and not overwrite:
        raise DataError(f"{out} exists; pass --overwrite to replace it")
    reason = missing_tools()
    if reason:
        raise SemsegError(f"cannot drive the page: {reason}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, serving(model, free_port()) as url:
        with chromium_page(Path(tmp) / "profile", width=1280, height=760) as page:
            page.goto(url)
            upload(page, image)
            wait_for_overlay(page)
            if opacity is not None:
                set_opacity(page, opacity)
            shares = read_shares(page)
            tmp_png = out.with_name(out.stem + ".tmp.png")
            page.screenshot(path=str(tmp_png), full_page=True)
            tmp_png.replace(out)  # atomically: never a half-written picture in the docs
    return shares


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m semseg.serve.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="run folder, checkpoint folder or shipped model name")
    parser.add_argument("--out", default="docs/images/serve.png", help="PNG to write (default docs/images/serve.png)")
    parser.add_argument("--image", default=str(DEFAULT_FRAME), help="image to upload (default: a CamVid sample frame)")
    parser.add_argument("--opacity", type=float, default=None, help="set the opacity slider before the shot")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    try:
        shares = take_screenshot(args.model, Path(args.out), Path(args.image), args.opacity, args.overwrite)
    except SemsegError as exc:
        print(f"semseg: error: {exc}", file=sys.stderr)
        return 2
    print(", ".join(f"{name} {percent:.2f}%" for name, percent in shares))
    print(f"screenshot: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

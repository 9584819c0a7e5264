"""Driving the demo page as a person would: the server started by the ``semseg serve`` command,
the page opened in Debian's headless Chromium through Playwright (``pip install playwright``;
never ``playwright install``, which downloads a browser of its own). Used by the end-to-end test
and by :mod:`semseg.serve.screenshot`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def missing_tools() -> str | None:
    """Why the page cannot be driven here (``None`` when it can): a missing package or browser."""
    import importlib.util

    for module in ("gradio", "playwright"):
        if importlib.util.find_spec(module) is None:
            return f'{module} is not installed (pip install "semseg[e2e]")'
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return f"chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


def free_port() -> int:
    """A TCP port nobody listens on at this moment, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(model: str | Path, port: int, extra: Sequence[str] = (), timeout: float = 180.0) -> Iterator[str]:
    """Run ``semseg serve --model MODEL --port PORT`` in a child process until the page answers;
    yield its URL; stop the process afterwards. When the child exits early, its output is in the
    error."""
    url = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "semseg", "serve", "--model", str(model), "--port", str(port), *extra]
    # A file, not a pipe: nobody reads the child's output while it runs, and a full pipe would stall it.
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"semseg serve exited with code {proc.returncode}:\n{log.read()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"semseg serve did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def chromium_page(profile: Path, width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A Playwright page in headless Debian Chromium with a fresh profile folder ``profile``.
    Any request that leaves 127.0.0.1 is aborted (and recorded in ``page.offsite``): the page
    must work offline."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": width, "height": height},
        )
        offsite: list[str] = []

        def route(r: Any) -> None:
            if r.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
                r.continue_()
            else:
                offsite.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(120_000)  # a loaded two-core machine starts slowly; never a hang
            page.offsite = offsite  # type: ignore[attr-defined]
            yield page
        finally:
            context.close()


def upload(page: Any, path: str | Path) -> None:
    """Put ``path`` into the page's upload box (the hidden ``<input type=file>`` of ``#upload``)."""
    page.locator("#upload input[type=file]").set_input_files(str(path))


def wait_for_overlay(page: Any, timeout_ms: float = 60_000) -> dict[str, Any]:
    """Wait until the overlay image has loaded; its ``naturalWidth``/``naturalHeight`` and ``src``."""
    img = page.locator("#overlay img")
    img.wait_for(state="visible", timeout=timeout_ms)
    page.wait_for_function(
        "() => { const i = document.querySelector('#overlay img'); return i && i.complete && i.naturalWidth > 0; }",
        timeout=timeout_ms,
    )
    return img.evaluate("i => ({width: i.naturalWidth, height: i.naturalHeight, src: i.src})")


def set_opacity(page: Any, value: float) -> None:
    """Type ``value`` into the opacity slider's number box and wait for the redrawn overlay."""
    old = page.locator("#overlay img").get_attribute("src")
    box = page.locator("#opacity input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    wait_for_new_overlay(page, old)


def wait_for_new_overlay(page: Any, old_src: str) -> str:
    """Wait until the overlay image is another file than ``old_src`` and has loaded; its ``src``."""
    page.wait_for_function(
        "old => { const i = document.querySelector('#overlay img');"
        " return i && i.complete && i.naturalWidth > 0 && i.src !== old; }",
        arg=old_src,
    )
    return page.locator("#overlay img").get_attribute("src")


def read_shares(page: Any, timeout_ms: float = 60_000) -> list[tuple[str, float]]:
    """The area-share table's rows as ``(class name, percent)``."""
    page.locator("#shares-table tbody tr").first.wait_for(timeout=timeout_ms)
    rows = page.locator("#shares-table tbody tr")
    return [
        (rows.nth(i).locator("td").nth(0).inner_text().strip(), float(rows.nth(i).locator("td.share").inner_text()))
        for i in range(rows.count())
    ]

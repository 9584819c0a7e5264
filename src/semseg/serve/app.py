"""``semseg serve``: the Gradio page around :class:`~semseg.serve.session.DemoModel`.

Only the wiring lives here (components, events, launch); what is predicted, drawn, counted and
refused is in the plain modules beside it, tested without a browser. Gradio is an optional extra
(``pip install "semseg[serve]"``), imported only when a page is built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semseg.errors import DataError, SemsegError
from semseg.serve.session import Analysis, DemoModel
from semseg.serve.upload import MB, UploadLimits

if TYPE_CHECKING:
    import gradio as gr

INSTALL_HINT = 'semseg serve needs gradio, which is not installed: pip install "semseg[serve]"'
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
CSS = """
#shares-table { border-collapse: collapse; width: 100%; }
#shares-table td, #shares-table th { padding: 2px 8px; text-align: left; }
#shares-table td.share, #shares-table td.total, #shares-table th:last-child { text-align: right; }
#shares-table tfoot td { border-top: 1px solid #888; font-weight: 600; }
#shares-table .swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px;
  border: 1px solid #333; vertical-align: -1px; }
#status p strong { color: #b00020; }
#overlay img { width: 100%; height: 100%; object-fit: contain; }
"""


def require_gradio() -> Any:
    """The ``gradio`` module, or a one-line :class:`~semseg.errors.SemsegError` naming the
    install command."""
    # No usage statistics leave the machine: the page is local and the tests run offline.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise SemsegError(INSTALL_HINT) from None
    return gradio


def build_app(demo: DemoModel, title: str = "semseg demo") -> gr.Blocks:
    """The page: an upload box, the opacity slider, the class toggles and a status line on the
    left; the overlay and the area-share table on the right."""
    gr = require_gradio()
    limits = demo.limits

    def on_upload(path: str | None, opacity: float) -> tuple[Any, ...]:
        if path is None:  # the file was removed from the box
            return None, None, gr.update(choices=[], value=[]), "", ""
        try:
            analysis = demo.analyse(path)
        except DataError as exc:
            return None, None, gr.update(choices=[], value=[]), "", f"**Cannot use this file.** {exc}"
        ids = [s.class_id for s in analysis.shares]
        choices = [(s.name, s.class_id) for s in analysis.shares]
        picture = demo.overlay(analysis, ids, opacity)
        return (
            analysis,
            picture,
            gr.update(choices=choices, value=ids),
            demo.shares_html(analysis),
            demo.summary(analysis),
        )

    def on_view(analysis: Analysis | None, visible: list[int], opacity: float) -> np.ndarray | None:
        # Toggles and opacity redraw from the kept prediction: the model does not run again.
        return None if analysis is None else demo.overlay(analysis, list(visible), opacity)

    names = ", ".join(demo.class_names[:12]) + (", ..." if len(demo.class_names) > 12 else "")
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(
            f"# {title}\nUpload an image to see its segmentation ({len(demo.class_names)} classes: {names}). "
            f"Up to {limits.max_bytes / MB:g} MB and {limits.max_pixels:,} pixels."
        )
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Image", file_count="single", type="filepath", elem_id="upload")
                opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Overlay opacity", elem_id="opacity")
                classes = gr.CheckboxGroup(choices=[], value=[], label="Classes shown", elem_id="classes")
                status = gr.Markdown("", elem_id="status")
            with gr.Column(scale=2):
                picture = gr.Image(
                    label="Overlay",
                    type="numpy",
                    format="png",
                    interactive=False,
                    height=480,
                    buttons=["download", "fullscreen"],
                    elem_id="overlay",
                )
                shares = gr.HTML("", label="Area shares", elem_id="shares")
        upload.change(on_upload, [upload, opacity], [state, picture, classes, shares, status])
        classes.input(on_view, [state, classes, opacity], picture)
        # While one redraw runs, only the latest slider position waits (no backlog while dragging).
        opacity.change(on_view, [state, classes, opacity], picture, trigger_mode="always_last")
    return app


def run_server(
    model: str,
    host: str = "127.0.0.1",
    port: int = 7860,
    max_upload_mb: float = 20.0,
    max_pixels: int = 4096 * 4096,
    inference_options: dict[str, Any] | None = None,
    block: bool = True,
) -> Any:
    """Load ``model`` (:func:`semseg.api.load_model`: a run folder, a checkpoint or a shipped
    model's name) and serve the page on ``host:port`` until interrupted (``block=False``:
    return the running Gradio app; ``app.close()`` stops it)."""
    from semseg.api import load_model

    gr = require_gradio()
    if max_upload_mb <= 0 or max_pixels <= 0:
        raise DataError(f"--max-upload-mb and --max-pixels must be positive, got {max_upload_mb} and {max_pixels}")
    limits = UploadLimits(max_bytes=int(max_upload_mb * MB), max_pixels=max_pixels)
    demo = DemoModel(load_model(model), limits, **(inference_options or {}))
    if host not in LOCAL_HOSTS:
        print(f"semseg: warning: serving on {host}: the page is reachable from other machines")
    app = build_app(demo, title=f"semseg demo: {Path(model).name or model}")
    app.queue(default_concurrency_limit=1)  # one prediction at a time: the model is not shared safely
    try:
        app.launch(
            server_name=host,
            server_port=port,
            max_file_size=limits.max_bytes,  # Gradio refuses a larger upload before storing it
            share=False,
            ssr_mode=False,
            prevent_thread_lock=not block,
            css=CSS,
            theme=gr.themes.Default(),
            footer_links=["gradio"],
        )
    except OSError:  # Gradio's message names its own environment variables; say it in CLI terms
        raise DataError(
            f"cannot serve on {host}:{port}: the port is taken or {host} is not an address of this machine;"
            " pass another --port or --host"
        ) from None
    return app

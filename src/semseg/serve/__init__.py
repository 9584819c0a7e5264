"""The web demo page (``semseg serve``): upload an image, see the overlay, switch classes on and
off, change the opacity, read each class's share of the pixels.

The logic is plain Python, tested without a browser: :mod:`~semseg.serve.upload` (size cap
before decoding, pixel cap from the header), :mod:`~semseg.serve.shares` (area shares that add up
to 100 %), :mod:`~semseg.serve.render` (overlay with class toggles and opacity, the share table)
and :mod:`~semseg.serve.session` (model + upload -> all of these). :mod:`~semseg.serve.app` wires
them into a Gradio page (optional extra ``semseg[serve]``); :mod:`~semseg.serve.browser` drives
that page in headless Chromium for the end-to-end test and the docs screenshot.
"""

from semseg.serve.render import render_overlay, shares_table_html
from semseg.serve.session import Analysis, DemoModel
from semseg.serve.shares import ClassShare, area_shares
from semseg.serve.upload import UploadLimits, read_upload

__all__ = [
    "Analysis",
    "ClassShare",
    "DemoModel",
    "UploadLimits",
    "area_shares",
    "read_upload",
    "render_overlay",
    "shares_table_html",
]

"""One self-contained HTML page: inline CSS, every image embedded as a ``data:image/png;base64``
URI, no script and no link to anything outside the file, so it opens offline and can be mailed."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.85em; }
img { max-width: 100%; height: auto; }
.note { color: #555; font-size: 0.9em; }
"""


@dataclass
class Plot:
    """An embedded PNG: its file name in the report folder, its bytes and a caption."""

    file: str
    png: bytes
    caption: str = ""


@dataclass
class Section:
    """A heading with optional text lines and plots."""

    heading: str
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def table_html(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table with escaped cells."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_page(title: str, intro: str, sections: Sequence[Section]) -> str:
    """The page: ``title``, ``intro`` (already HTML, e.g. from :func:`table_html`) and the
    sections; plot files are named in the captions so the PNGs beside the page can be found."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        intro,
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        parts += [f'<p class="note">{html.escape(note)}</p>' for note in section.notes]
        for plot in section.plots:
            caption = f"{plot.caption} ({plot.file})" if plot.caption else plot.file
            parts.append(
                f'<figure><img src="{data_uri(plot.png)}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

"""The HTML kit of the report: cells, rows, tables, figures, the page's CSS and script.

Sections build their HTML from these and from :mod:`dnnmeter.report.format`; every text
from the data goes through :func:`html.escape` here.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from dnnmeter.report.plot import FigureResult

LABEL_MARKS = {"measured": "M", "published": "P", "estimated": "E", "predicted": "Pr"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1180px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.l,th.l{text-align:left}td.na{color:#999}
sup.lab{font-size:.65em;color:#555;margin-left:.15em}
sup.lab-published{color:#8a4b00}sup.lab-estimated{color:#7a0052}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.35em;border:1px solid #555}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}.skipped{color:#7a4a00;background:#fff8e6;padding:.4em .6em}
.muted{color:#666;font-size:.9em}code{background:#f4f4f4;padding:0 .2em}
"""

# Marks the page once loaded, so a headless browser can tell that every figure decoded.
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; }
  }
  document.body.setAttribute('data-figures-ok', ok + '/' + imgs.length);
});
"""


def mark(label: str | None) -> str:
    """The superscript that says where a number comes from."""
    if not label:
        return ""
    letter = LABEL_MARKS.get(label, "?")
    return f'<sup class="lab lab-{escape(label)}" title="{escape(label)}">{letter}</sup>'


def cell(text: str, label: str | None = None, why_missing: str | None = None) -> str:
    """A table cell: the value and its source mark, or a dash whose tooltip says why."""
    if text == "-":
        title = f' title="{escape(why_missing)}"' if why_missing else ""
        return f'<td class="na"{title}>-</td>'
    return f"<td>{escape(text)}{mark(label)}</td>"


def row(cells: Iterable[str]) -> str:
    return "<tr>" + "".join(cells) + "</tr>"


def head(*names: str, left: int = 1) -> str:
    """A header row; the first ``left`` columns hold text and are left-aligned."""
    cells = (f'<th class="{"l" if i < left else ""}">{escape(n)}</th>' for i, n in enumerate(names))
    return "<tr>" + "".join(cells) + "</tr>"


def table(header: str, rows: Sequence[str]) -> str:
    return "<table>" + header + "".join(rows) + "</table>"


def plain(value: Any) -> str:
    """A value from the data as text: lists joined, nested objects as compact JSON."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(", ", ": "))
    return "-" if value is None else str(value)


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def svg_link(svg: Path | None, base: Path) -> str:
    """A relative link to the SVG beside the report (the PNG is embedded, the SVG is not)."""
    if svg is None:
        return ""
    try:
        rel = Path(os.path.relpath(svg.resolve(), base.resolve()))
    except ValueError:  # another drive on Windows: no relative path exists
        return ""
    return f' <a href="{escape(rel.as_posix())}">SVG</a>'


def figure_html(fig: FigureResult, base: Path) -> str:
    if fig.png is None or fig.skipped_reason:
        return (f'<p class="skipped" id="{escape(fig.name)}">Not drawn: <b>{escape(fig.title)}</b> '
                f"({escape(fig.caption)}): {escape(fig.skipped_reason or 'no file')}.</p>")
    notes = "".join(f" {escape(n)}." for n in fig.notes)
    return (f'<figure id="{escape(fig.name)}"><img src="{data_uri(fig.png)}" alt="{escape(fig.title)}">'
            f"<figcaption><b>{escape(fig.title)}</b>. {escape(fig.caption)}{notes}{svg_link(fig.svg, base)}"
            "</figcaption></figure>")

"""The report page's earlier home: :mod:`dnnmeter.report.page` (the page and its sections
list), :mod:`dnnmeter.report.markup` (cells and tables) and :mod:`dnnmeter.report.format`
(numbers) hold what was here. These names stay importable from here."""

from __future__ import annotations

from dnnmeter.report.format import num
from dnnmeter.report.markup import cell, figure_html, head, mark, plain, row, table
from dnnmeter.report.page import page, render_all, write_report

__all__ = ["cell", "figure_html", "head", "mark", "num", "page", "plain", "render_all", "row", "table",
           "write_report"]

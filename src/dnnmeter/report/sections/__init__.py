"""The report's sections, one module each; :mod:`dnnmeter.report.page` lists them in page order.

A section is a function ``html(page: Page) -> str`` that draws its own figures into
``page.figures_dir`` and returns its HTML fragment, empty when the study holds nothing for it.
To add one: write ``sections/NAME.py`` with that function and add one line to
``dnnmeter.report.page.SECTIONS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dnnmeter.report import fits as F
from dnnmeter.report.plot import FigureResult
from dnnmeter.results.records import StudyData


@dataclass
class Page:
    """What every section reads: the study as typed records (``data``), its fits, where
    figures go and where the page is. ``figures`` are the models study's figures when drawn
    beforehand."""

    data: StudyData
    fits: F.StudyFits
    figures_dir: Path
    base: Path
    figures: Sequence[FigureResult] | None = None


@dataclass(frozen=True)
class Section:
    """One section of the page; ``draws`` says it draws figures of its own (skipped when a
    caller hands the page pre-rendered fragments instead)."""

    name: str
    html: Callable[[Page], str]
    draws: bool = False

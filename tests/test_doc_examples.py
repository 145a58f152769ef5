"""The ``>>>`` examples of the docs and of the module docstrings run as tests.

Every module of dnnmeter with examples, and every page (README.md, docs/*.md) with ``>>>``
examples, is one test; outputs are compared with ELLIPSIS and NORMALIZE_WHITESPACE. An
example that cannot run here (it needs ImageNet on disk, minutes of training, this machine's
own values, or names the reader supplies) says why beside it and carries
``# doctest: +SKIP``. The README's API block is plain Python without outputs: a slow test
runs it whole, so that a renamed function or a broken path fails there first.
"""

from __future__ import annotations

import doctest
import importlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Examples that start the bench worker (a subprocess): the integration layer.
STARTS_PROCESSES = {"dnnmeter.measure", "docs/bench.md"}


def _modules() -> list[str]:
    """Modules whose source holds a ``>>>`` example, found without importing them."""
    names = []
    for path in sorted((SRC / "dnnmeter").rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            parts = path.relative_to(SRC).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _pages() -> list[str]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [str(p.relative_to(ROOT)) for p in pages if re.search(r"^>>> ", p.read_text(encoding="utf-8"), re.M)]


def _layered(names: list[str]) -> list[object]:
    return [pytest.param(n, marks=pytest.mark.integration) if n in STARTS_PROCESSES else n for n in names]


def _run(tests: list[doctest.DocTest]) -> None:
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()


@pytest.mark.parametrize("module", _layered(_modules()))
def test_module_examples(module: str) -> None:
    found = doctest.DocTestFinder(exclude_empty=True).find(importlib.import_module(module), module)
    assert found, f"{module} has `>>> ` in its source but no example doctest can find"
    _run(found)


@pytest.mark.parametrize("page", _layered(_pages()))
def test_page_examples(page: str) -> None:
    path = ROOT / page
    _run([doctest.DocTestParser().get_doctest(path.read_text(encoding="utf-8"), {}, page, str(path), 0)])


def test_the_pages_with_api_examples_are_found() -> None:
    assert {"docs/bench.md", "docs/seed-models.md"} <= set(_pages())
    assert {"dnnmeter", "dnnmeter.measure", "dnnmeter.zoo.seed_accuracy"} <= set(_modules())


def _readme_api_block() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```$", (ROOT / "README.md").read_text(encoding="utf-8"), re.M | re.S)
    (api,) = [b for b in blocks if "import dnnmeter" in b]
    return api


@pytest.mark.slow
@pytest.mark.integration  # dnnmeter.benchmark starts the bench worker
@pytest.mark.timeout(1200)  # trains tiny_alexnet for 8 epochs and evaluates resnet18 on 200 digits
def test_the_readme_api_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # whatever it writes stays in the test's folder
    exec(compile(_readme_api_block(), "README.md (API block)", "exec"), {})

"""Shared test settings: the slow marker and the golden-file overwrite flag.

Slow tests (zoo-wide checks) run only with DNNMETER_RUN_SLOW=1, which .ci/run sets.
Golden files are rewritten with ``pytest --update-golden``; review the diff before committing.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden files")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("DNNMETER_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow zoo-wide check; set DNNMETER_RUN_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def golden(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``golden(name, text)`` compares text with tests/golden/name (or rewrites it)."""

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if request.config.getoption("--update-golden") or not path.exists():
            if not request.config.getoption("--update-golden"):
                pytest.fail(f"golden file {path} is missing; run pytest --update-golden")
            path.write_text(text)
            return
        assert text == path.read_text(), f"{name} differs from its golden file (pytest --update-golden)"

    return check


warnings.filterwarnings("ignore", message="The default weight initialization", category=FutureWarning)

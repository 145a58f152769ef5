"""Shared test settings: the test layers and the golden-file overwrite flag.

The layers are markers, selected with ``-m`` (pyproject.toml lists them):

- unmarked: the fast layer, in-process unit tests; a plain ``pytest`` (``make test-fast``)
  runs only these;
- ``integration``: tests that start processes (the bench worker, torchrun, ``python -m``);
- ``slow``: zoo-wide checks and other runs of minutes;
- ``browser``: the report in headless Chromium;
- ``database``: the results store on a real PostgreSQL server (``postgres_server`` below).

``make test`` and .ci/run run every layer (``-m ""``). DNNMETER_RUN_SLOW=1, the old switch,
still works: it runs every layer when no ``-m`` is given on the command line.
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


def pytest_configure(config: pytest.Config) -> None:
    given = any(arg == "-m" or arg.startswith("-m") for arg in config.invocation_params.args)
    if os.environ.get("DNNMETER_RUN_SLOW") == "1" and not given:
        config.option.markexpr = ""  # every layer, as the old switch ran everything


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


@pytest.fixture(scope="session")
def postgres_server():  # type: ignore[no-untyped-def]
    """A real PostgreSQL server for the session (tests/pg_server.py), removed afterwards.

    Skipped, with the reason, only where PostgreSQL cannot be installed; with
    DNNMETER_REQUIRE_POSTGRES=1 (.ci/run) that fails instead.
    """
    from pg_server import PostgresServer, Unavailable

    try:
        import psycopg  # noqa: F401 - the driver the store uses
        server = PostgresServer()
    except (ImportError, Unavailable) as exc:
        reason = (f"no PostgreSQL for the store tests: {exc}; `make postgres` installs it, "
                  "`pip install dnnmeter[fleet]` the driver")
        if os.environ.get("DNNMETER_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres_server) -> str:  # type: ignore[no-untyped-def]
    """The URL of a new, empty database on the session's server (password included)."""
    return str(postgres_server.new_database())

"""The package's import structure: no import cycles, no private names taken across modules.

Imports are read with ``ast`` from src/dnnmeter (nothing is imported). An edge goes from a
module to the dnnmeter module it names: ``from dnnmeter.zoo import registry`` names the
submodule, ``from dnnmeter.zoo import resolve`` the package. Imports under
``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dnnmeter"

# Cycles being removed; each entry is the set of modules of one cycle. None is left: a cycle
# listed here that no longer exists fails the test too.
KNOWN_CYCLES: list[frozenset[str]] = []

# (importing module, imported private name) pairs that other changes are removing.
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, module_level_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements under ``node`` that run (not under ``if TYPE_CHECKING``)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _imports(ast.Module(body=[other], type_ignores=[]), module_level_only)
        elif module_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        else:
            yield from _imports(child, module_level_only)


def _base(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join(package + ([node.module] if node.module else []))


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str | None]]:
    """(dnnmeter module imported, name taken from it or None) for each name imported."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in MODULES:
                yield alias.name, None
        return
    base = _base(module, node)
    for alias in node.names:
        full = f"{base}.{alias.name}"
        if full in MODULES:
            yield full, None
        elif base in MODULES:
            yield base, alias.name


def import_graph(module_level_only: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[module] = {
            target
            for node in _imports(tree, module_level_only)
            for target, _ in _targets(module, node)
            if target != module
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle_and_nothing_else() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]


def test_module_level_imports_form_no_cycle() -> None:
    assert cycles(import_graph(module_level_only=True)) == []


def test_no_import_cycle_beyond_the_known_ones_even_through_imports_inside_functions() -> None:
    # An import inside a function only postpones a cycle; the layers still depend both ways.
    found = set(cycles(import_graph(module_level_only=False)))
    assert found - set(KNOWN_CYCLES) == set(), "new import cycle"
    assert set(KNOWN_CYCLES) - found == set(), "a known cycle is gone: remove it from KNOWN_CYCLES"


def _private_imports() -> set[tuple[str, str]]:
    found = set()
    for module, path in MODULES.items():
        for node in _imports(ast.parse(path.read_text(), str(path)), module_level_only=False):
            for target, name in _targets(module, node):
                if name is not None and name.startswith("_") and not name.startswith("__"):
                    found.add((module, f"{target}.{name}"))
    return found


def test_no_module_imports_a_private_name_from_another() -> None:
    # A package's private submodule (transforms/_compress_common.py) is a module, not a name, and
    # may be imported by its siblings.
    found = _private_imports()
    assert found - KNOWN_PRIVATE_IMPORTS == set()
    assert KNOWN_PRIVATE_IMPORTS - found == set(), "a known private import is gone: remove it from the list"


@pytest.mark.parametrize(
    "module",
    ["dnnmeter.registry", "dnnmeter.names", "dnnmeter._version", "dnnmeter.errors"],
)
def test_the_modules_at_the_bottom_import_nothing_above_them(module: str) -> None:
    # The CLI reads its choices from these while parsing, before torch is imported.
    graph = import_graph(module_level_only=True)
    assert graph[module] <= {"dnnmeter.errors"}

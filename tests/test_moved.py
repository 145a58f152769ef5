"""The old names still work for one release (issue 12): each old module path gives the very
module at its new path (an old package: the same names) with a FutureWarning, and
``dnnmeter.hardware(...)`` is ``dnnmeter.estimate_hardware(...)`` with a DeprecationWarning."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import dnnmeter
from dnnmeter._moved import MOVED, new_name

SRC = Path(__file__).resolve().parents[1] / "src"


def _old_paths() -> list[str]:
    """Every old path: the moved modules and each submodule of a moved package."""
    found = []
    for old, new in MOVED.items():
        found.append(old)
        package = SRC / Path(*new.split("."))
        if package.is_dir():
            found += [f"{old}.{p.stem}" for p in sorted(package.glob("*.py")) if p.stem != "__init__"]
    return found


OLD_PATHS = _old_paths()


def test_every_moved_package_and_its_submodules_are_listed() -> None:
    assert {"dnnmeter.modify.prune", "dnnmeter.train.checkpoint", "dnnmeter.evaluate.loop"} <= set(OLD_PATHS)
    assert new_name("dnnmeter.modify.prune") == "dnnmeter.transforms.prune"
    assert new_name("dnnmeter.modifications") == "dnnmeter.studies.modifications"  # not dnnmeter.modify + "ications"
    assert new_name("dnnmeter.transforms") is None and new_name("dnnmeter.training") is None


@pytest.mark.parametrize("old", OLD_PATHS)
def test_an_old_path_imports_the_same_module_with_a_future_warning(old: str) -> None:
    new = importlib.import_module(new_name(old) or "")
    sys.modules.pop(old, None)  # an earlier import of the old path has already warned
    with pytest.warns(FutureWarning, match=f"{old} is now {new.__name__}"):
        module = importlib.import_module(old)
    if hasattr(new, "__path__"):  # an old package: a stand-in whose every name is the new package's
        assert all(getattr(module, name) is getattr(new, name) for name in new.__all__)
    else:
        assert module is new and sys.modules[old] is new


def test_an_old_submodule_path_leaves_the_package_function_of_the_same_name() -> None:
    from dnnmeter.transforms import compare

    for old in ("dnnmeter.modify", "dnnmeter.modify.compare"):
        sys.modules.pop(old, None)
    with pytest.warns(FutureWarning):
        importlib.import_module("dnnmeter.modify.compare")
        from dnnmeter.modify import compare as old_compare
    assert old_compare is compare and callable(compare) and not isinstance(compare, type(sys))
    assert sys.modules["dnnmeter.transforms"].compare is compare


def test_from_an_old_path_import_a_name_gives_the_same_object() -> None:
    from dnnmeter.training import TrainResult
    from dnnmeter.transforms.prune import prune_model

    for old in ("dnnmeter.modify", "dnnmeter.modify.prune", "dnnmeter.train"):
        sys.modules.pop(old, None)
    with pytest.warns(FutureWarning):
        from dnnmeter.modify.prune import prune_model as old_prune_model
        from dnnmeter.train import TrainResult as OldTrainResult
    assert old_prune_model is prune_model and OldTrainResult is TrainResult


def test_importing_an_old_path_leaves_the_public_verbs_functions() -> None:
    with pytest.warns(FutureWarning):
        for old in ("dnnmeter.modify", "dnnmeter.train", "dnnmeter.evaluate"):
            sys.modules.pop(old, None)
            importlib.import_module(old)
    verbs = (dnnmeter.modify, dnnmeter.train, dnnmeter.evaluate)
    assert all(callable(f) and not isinstance(f, type(sys)) for f in verbs)


def test_calling_dnnmeter_hardware_is_estimate_hardware_with_a_deprecation_warning() -> None:
    from dnnmeter.hardware import original_alexnet_layers

    with pytest.warns(DeprecationWarning, match="estimate_hardware"):
        old = dnnmeter.hardware(original_alexnet_layers())
    assert old.to_dict() == dnnmeter.estimate_hardware(original_alexnet_layers()).to_dict()
    with pytest.warns(DeprecationWarning, match="estimate_hardware"):
        from dnnmeter.hardware import hardware
    assert hardware is dnnmeter.estimate_hardware


def test_dnnmeter_hardware_is_still_the_package() -> None:
    import dnnmeter.hardware.accesses as accesses

    package = sys.modules["dnnmeter.hardware"]
    assert dnnmeter.hardware.count_accesses is package.count_accesses is accesses.count_accesses
    assert dnnmeter.hardware.__name__ == "dnnmeter.hardware" and dnnmeter.hardware.__path__ == package.__path__
    assert "count_accesses" in dir(dnnmeter.hardware)

"""The old names, kept for one release (issue 12: names that say what they are): the old
module paths, and ``dnnmeter.hardware(...)`` (:class:`CallableHardware`).

``import dnnmeter.modify.prune`` gives the module ``dnnmeter.transforms.prune`` itself (the
same object, so classes, ``isinstance`` and monkeypatching agree) with a ``FutureWarning``
that names the new path, once per old path. An old *package* path (``dnnmeter.modify``) is a
stand-in that hands every attribute to the new package: were it the package itself, importing
``dnnmeter.modify.compare`` would bind the module over the package's function ``compare``.
One finder covers every submodule, where timm keeps a file per old module: 40 files of three
lines would each be a copy to keep in step.

The finder is installed by ``import dnnmeter``; it imports nothing heavy and answers only for
the names in :data:`MOVED`. Remove it, and this table, in the release after next.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

# Old path -> new path; a submodule of an old package moved with it.
MOVED: dict[str, str] = {
    "dnnmeter.modify": "dnnmeter.transforms",
    "dnnmeter.train": "dnnmeter.training",
    "dnnmeter.evaluate": "dnnmeter.accuracy",
    "dnnmeter.study": "dnnmeter.studies.models",
    "dnnmeter.modifications": "dnnmeter.studies.modifications",
    "dnnmeter.hardware.api": "dnnmeter.hardware.estimate",
    "dnnmeter.prediction.heap": "dnnmeter.measure.heap",  # bench measures with it now (--heap)
}


def new_name(old: str) -> str | None:
    """The path ``old`` moved to, or None when it did not move."""
    for before, after in MOVED.items():
        if old == before or old.startswith(before + "."):
            return after + old[len(before):]
    return None


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and loads it as the module at its new path."""

    def find_spec(self, fullname: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if new_name(fullname) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = new_name(spec.name)
        assert new is not None  # find_spec answered only for moved names
        warnings.warn(f"{spec.name} is now {new}; the old path goes in the next release",
                      FutureWarning, stacklevel=2)
        module = importlib.import_module(new)
        if hasattr(module, "__path__"):
            return _OldPackage(spec.name, module)
        # The new module keeps its own __name__ and __spec__: importlib sets only missing ones.
        return module

    def exec_module(self, module: ModuleType) -> None:
        pass  # already run under its new name


class _OldPackage(ModuleType):
    """An old package path: its attributes are the new package's; the submodules imported
    through it are not bound on it, so a submodule never hides the package's function of the
    same name (``compare``)."""

    def __init__(self, name: str, package: ModuleType) -> None:
        super().__init__(name, package.__doc__)
        super().__setattr__("__path__", [])  # a package, whose submodules only the finder knows
        super().__setattr__("_package", package)

    def __getattr__(self, name: str) -> object:
        return getattr(self._package, name)

    def __setattr__(self, name: str, value: object) -> None:
        if not isinstance(value, ModuleType):  # importlib's binding of a submodule is dropped
            super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return dir(self._package)


def install() -> None:
    """Put the finder first on ``sys.meta_path``, once."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())


class CallableHardware(ModuleType):
    """``dnnmeter.hardware``: the package, and for one more release callable as the function
    it was named after, ``dnnmeter.hardware(...)``, now :func:`dnnmeter.estimate_hardware`.

    A stand-in that hands every attribute to the package (``dnnmeter.hardware.count_accesses``,
    monkeypatching included); ``sys.modules`` keeps the package itself, so ``from
    dnnmeter.hardware import ...`` never sees it.
    """

    def __init__(self, package: ModuleType) -> None:
        super().__init__(package.__name__, package.__doc__)
        for name in ("__spec__", "__loader__", "__package__", "__file__", "__path__"):
            super().__setattr__(name, getattr(package, name, None))
        super().__setattr__("_package", package)

    def __getattr__(self, name: str) -> object:
        return getattr(self._package, name)

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._package, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._package, name)

    def __dir__(self) -> list[str]:
        return dir(self._package)

    def __call__(self, *args: object, **kwargs: object) -> object:
        warnings.warn("dnnmeter.hardware(...) is now dnnmeter.estimate_hardware(...); the old call goes in the "
                      "next release", DeprecationWarning, stacklevel=2)
        return self._package.estimate_hardware(*args, **kwargs)

"""Any user model as ``package.module:callable`` (the callable returns an ``nn.Module``)."""

from __future__ import annotations

import importlib
import inspect
import re
import sysconfig
import traceback
from pathlib import Path
from typing import Any

from torch import nn

from dnnmeter.errors import DnnmeterError, ModelBuildError
from dnnmeter.zoo.registry import ModelEntry

# Frames in these folders are not the user's code: Python's, the installed libraries', dnnmeter's.
_NOT_USER = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
                  | {str(Path(__file__).resolve().parents[1])})
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def looks_like_callable(name: str) -> bool:
    return bool(_SPEC.match(name)) and not name.startswith("timm:")


def _where(exc: BaseException, called: Any = None) -> str:
    """file:line of the deepest frame in the user's own code (not in Python, a library or dnnmeter);
    where none ran (the call itself failed), where ``called`` is defined."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if not f.filename.startswith(_NOT_USER) and not f.filename.startswith("<")]
    if ours:
        return f"{ours[-1].filename}:{ours[-1].lineno}"
    try:
        return f"{inspect.getsourcefile(called)}:{inspect.getsourcelines(called)[1]}"
    except (TypeError, OSError):
        return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


def _first_line(exc: BaseException) -> str:
    text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _import(spec: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):  # the module itself
            raise ModelBuildError(
                f"{spec}: cannot import {module_name!r}: no module {exc.name!r} on the search path; "
                "run from the folder that holds it or add that folder to PYTHONPATH"
            ) from exc
        raise ModelBuildError(f"{spec}: importing {module_name} failed at {_where(exc)}: {_first_line(exc)}") from exc
    except Exception as exc:  # the user's module failed while it ran (a syntax error is one)
        raise ModelBuildError(f"{spec}: importing {module_name} failed at {_where(exc)}: {_first_line(exc)}; "
                              "fix the module (--debug shows the traceback)") from exc


def _resolve(spec: str) -> Any:
    module_name, attr_path = spec.split(":", 1)
    obj = _import(spec, module_name)
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError as exc:
            raise ModelBuildError(f"{spec}: {module_name} has no attribute {attr_path!r}") from exc
    return obj


def build(spec: str, weights: str | None = None, **kwargs: Any) -> nn.Module:
    obj = _resolve(spec)
    try:
        model = obj if isinstance(obj, nn.Module) else obj(**kwargs) if callable(obj) else None
    except DnnmeterError:
        raise
    except Exception as exc:  # the user's builder failed: say where, in one line
        given = f" (called with {', '.join(f'{k}={v!r}' for k, v in kwargs.items())})" if kwargs else ""
        raise ModelBuildError(f"{spec}: the model builder raised {_first_line(exc)} at {_where(exc, obj)}{given}; "
                              "fix it (--debug shows the traceback)") from exc
    if not isinstance(model, nn.Module):
        raise ModelBuildError(f"{spec}: expected an nn.Module or a callable returning one")
    return model


def entry(spec: str) -> ModelEntry:
    obj = _resolve(spec)  # fail early, before any measuring
    size = getattr(obj, "input_size", None) or getattr(obj, "default_input_size", None)
    input_size = tuple(size) if size else (3, 224, 224)
    return ModelEntry(
        name=spec,
        source="python",
        input_size=(int(input_size[0]), int(input_size[1]), int(input_size[2])),
        build=lambda weights=None, **kw: build(spec, weights, **kw),
        family=spec.split(":", 1)[1].split(".")[-1],
        description=f"user model {spec}",
    )

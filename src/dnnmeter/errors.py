"""dnnmeter's exceptions: one base class, one subclass per kind of user error.

The CLI turns any :class:`DnnmeterError` into a one-line message and exit status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DnnmeterError(Exception):
    """Base class of every error that a user can fix by changing their input."""


class UnknownModelError(DnnmeterError, KeyError):
    """A model name that no source knows. The message names the closest matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(DnnmeterError, ImportError):
    """An optional extra (timm, onnx) is needed for what was asked."""


class ModelBuildError(DnnmeterError):
    """The model could not be constructed (bad `module:callable`, bad ONNX file, ...)."""


class ModelForwardError(DnnmeterError):
    """The model's forward pass failed at the given input size."""


class InvalidInputError(DnnmeterError, ValueError):
    """An argument is malformed (input size, batch size, format, ...)."""


class StoreError(DnnmeterError):
    """The results store cannot be used: unreachable, refused, lost mid-run, or not a dnnmeter store."""

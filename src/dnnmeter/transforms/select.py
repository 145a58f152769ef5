"""Which layers an op may touch: ``layers`` patterns on qualified module names.

A pattern is an fnmatch pattern (``features.*``) or a comma list of them
(``conv2,conv3``). A module is selected when its own name or the name of one of its
parents matches, so ``conv4`` selects ``conv4.conv`` and ``features`` selects everything
inside ``features``.
"""

from __future__ import annotations

import fnmatch

from torch import nn

from dnnmeter.errors import InvalidInputError


def parse_patterns(layers: str | None) -> list[str] | None:
    """``"a, b.*"`` -> ``["a", "b.*"]``; None (every layer) stays None."""
    if layers is None:
        return None
    patterns = [p.strip() for p in str(layers).split(",") if p.strip()]
    if not patterns:
        raise InvalidInputError(f"bad layers pattern {layers!r}: give names or fnmatch patterns, e.g. features.*")
    return patterns


def selected(name: str, patterns: list[str] | None) -> bool:
    if patterns is None:
        return True
    parts = name.split(".")
    prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(p, pat) for p in prefixes for pat in patterns)


def check_patterns(model: nn.Module, patterns: list[str] | None) -> None:
    """Each pattern must match some module: a pattern matching nothing is a typo."""
    if patterns is None:
        return
    names = [n for n, _ in model.named_modules() if n]
    for pat in patterns:
        if not any(fnmatch.fnmatchcase(n, pat) for n in names):
            sample = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise InvalidInputError(
                f"layers pattern {pat!r} matches no module; names look like: {sample}"
            )

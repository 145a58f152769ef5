"""What every op gets: the options, the layer patterns and the record it adds to."""

from __future__ import annotations

from dataclasses import dataclass, field

from dnnmeter.transforms.result import Change, Skip


@dataclass(frozen=True)
class Options:
    """``between``: what goes between the convs an op makes (convs.BETWEEN); ``xception``
    puts nothing between the halves of a separable conv; ``projection`` lets ``residual``
    add a 1x1 conv shortcut where shapes differ; ``input_size`` (C, H, W) is where shapes
    are read."""

    between: str = "bn-relu"
    xception: bool = False
    projection: bool = False
    input_size: tuple[int, ...] = (3, 224, 224)


@dataclass
class Context:
    options: Options
    patterns: list[str] | None
    changes: list[Change] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    def skip(self, name: str, op: str, reason: str) -> None:
        self.skipped.append(Skip(name, op, reason))

    def change(self, name: str, op: str, detail: str, method: str) -> None:
        self.changes.append(Change(name, op, detail, method))

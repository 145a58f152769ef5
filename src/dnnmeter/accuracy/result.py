"""What an evaluation returns (:class:`EvalResult`) and how it is counted (:class:`Tally`).

Training reports its validation the same way (``dnnmeter.train``), so its per-class table
reads like ``dnnmeter eval``'s: both use :func:`per_class_rows` and :func:`best_and_worst`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dnnmeter._serial import ItemAccess, Record
from dnnmeter.data import Skipped

TOP_K = 5
RANKED = 5  # classes in best_classes and in worst_classes


@dataclass
class ClassAccuracy(ItemAccess, Record):
    """One class's top-1 score: ``correct`` of ``count`` images (``accuracy`` None when the
    class had none); ``class_name`` is the folder or WNID, ``description`` its words when
    the data set ships them."""

    class_index: int
    class_name: str
    description: str | None
    correct: int
    count: int
    accuracy: float | None


@dataclass
class EvalResult(Record):
    """Accuracy of ``model`` on ``data``, measured.

    ``top1`` and ``top5`` are fractions of the ``n`` images evaluated (unreadable ones are in
    ``skipped``, not in ``n``). ``top5`` is top-``top5_k`` with ``top5_k = min(5, outputs)``:
    a model with fewer than 5 outputs is scored on all of them (top5 is then 1.0 for every
    label it can output). ``per_class`` holds one :class:`ClassAccuracy` per class.
    ``images_per_s`` is end to end: reading, decoding, preprocessing and the forward pass.
    ``held_out``: True when every image scored is one the weights were not trained on (the
    checkpoint's recorded split), False when the data is what they were trained on, None
    when that is not known; ``held_out_note`` says which and why.
    """

    model: str
    data: str
    layout: str
    n: int
    top1: float | None
    top5: float | None
    top5_k: int | None
    per_class: list[ClassAccuracy]
    best_classes: list[ClassAccuracy]
    worst_classes: list[ClassAccuracy]
    images_per_s: float | None
    seconds: float
    skipped: list[dict[str, str]]
    weights: str
    label: str = "measured"
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    held_out: bool | None = None
    held_out_note: str = ""


def _padded(counts: np.ndarray, size: int) -> np.ndarray:
    return np.pad(counts, (0, size - len(counts))) if len(counts) < size else counts


@dataclass
class Tally:
    """Per-class counts from evaluating some of a data set's indices.

    ``count[c]`` images of class ``c`` were scored; ``correct1[c]`` had ``c`` as the highest
    output, ``correctk[c]`` among the ``k`` highest. Ties between outputs go to the lower
    class index (a stable sort), so the counts are exact and repeatable.
    """

    count: np.ndarray
    correct1: np.ndarray
    correctk: np.ndarray
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    outputs: int | None = None  # the model's number of outputs, once seen

    @classmethod
    def empty(cls, n_classes: int) -> Tally:
        zeros = np.zeros(n_classes, dtype=np.int64)
        return cls(zeros, zeros.copy(), zeros.copy())

    @property
    def k(self) -> int | None:
        return None if self.outputs is None else min(TOP_K, self.outputs)

    def _grow(self, size: int) -> None:
        self.count, self.correct1, self.correctk = (
            _padded(a, size) for a in (self.count, self.correct1, self.correctk)
        )

    def add(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Score one batch: ``logits`` (N, outputs), ``targets`` (N,) class indices."""
        self.outputs = int(logits.shape[1])
        order = torch.sort(logits, dim=1, descending=True, stable=True).indices[:, : self.k]
        hits = (order == targets[:, None]).numpy()
        labels = targets.numpy()
        self._grow(int(labels.max()) + 1)
        size = len(self.count)
        self.count += np.bincount(labels, minlength=size)
        self.correct1 += np.bincount(labels[hits[:, 0]], minlength=size)
        self.correctk += np.bincount(labels[hits.any(axis=1)], minlength=size)

    def merge(self, other: Tally) -> Tally:
        """The tally of both (disjoint) subsets; ``seconds`` is the longer, as shards run at once."""
        size = max(len(self.count), len(other.count))

        def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            total: np.ndarray = _padded(a, size) + _padded(b, size)
            return total

        return Tally(
            add(self.count, other.count),
            add(self.correct1, other.correct1),
            add(self.correctk, other.correctk),
            skipped=sorted(self.skipped + other.skipped),
            seconds=max(self.seconds, other.seconds),
            outputs=self.outputs if self.outputs is not None else other.outputs,
        )


def per_class_rows(tally: Tally, classes: Sequence[str],
                   descriptions: Sequence[str | None]) -> list[ClassAccuracy]:
    """One :class:`ClassAccuracy` per class, in class-index order."""
    rows = []
    for c in range(max(len(tally.count), len(classes))):
        count = int(tally.count[c]) if c < len(tally.count) else 0
        correct = int(tally.correct1[c]) if c < len(tally.correct1) else 0
        rows.append(ClassAccuracy(
            class_index=c,
            class_name=classes[c] if c < len(classes) else str(c),
            description=descriptions[c] if c < len(descriptions) else None,
            correct=correct,
            count=count,
            accuracy=correct / count if count else None,
        ))  # fmt: skip
    return rows


def best_and_worst(per_class: list[ClassAccuracy],
                   n: int = RANKED) -> tuple[list[ClassAccuracy], list[ClassAccuracy]]:
    """The ``n`` classes of highest and of lowest top-1 accuracy, among classes with images.

    Ties in accuracy go to the class with more images (the better evidence), then to the
    lower class index.
    """
    scored = [row for row in per_class if row.count and row.accuracy is not None]
    best = sorted(scored, key=lambda r: (-(r.accuracy or 0.0), -r.count, r.class_index))
    worst = sorted(scored, key=lambda r: (r.accuracy or 0.0, -r.count, r.class_index))
    return best[:n], worst[:n]

"""``train()``: the one door in. Checks its arguments in this process, then trains here, in
spawned processes, or as one rank of a torchrun job."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from dnnmeter.errors import InvalidInputError
from dnnmeter.measure.threads import torch_threads
from dnnmeter.training.loop import Sync
from dnnmeter.training.result import TrainResult
from dnnmeter.training.session import Progress, run
from dnnmeter.training.settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LR,
    DIGITS_INPUT_SIZE,
    TrainSettings,
    check_settings,
)

DEFAULT_INPUT_SIZE = 224  # a module passed without input_size, on a folder


def input_size_for(model: str | nn.Module, data: str, input_size: int | None = None) -> int:
    """The square input size train() uses: the given one, 32 on digits, else the model's own."""
    if input_size is not None:
        return input_size
    if str(data) == "digits":
        return DIGITS_INPUT_SIZE
    if isinstance(model, str):
        from dnnmeter.zoo import resolve

        return resolve(model).input_size[1]
    return DEFAULT_INPUT_SIZE


@contextlib.contextmanager
def _local_state(threads: int | None) -> Iterator[None]:
    """Seeding, threads and deterministic kernels for this run; the caller's come back after."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]), torch_threads(threads):
        try:
            # warn_only: a kernel without a deterministic version warns instead of failing.
            torch.use_deterministic_algorithms(True, warn_only=True)
            yield
        finally:
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def train(
    model: str | nn.Module,
    data: str = "digits",
    *,
    epochs: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    augment: str | Sequence[str] = (),
    out: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    val_fraction: float = 0.2,
    input_size: int | None = None,
    nproc: int = 1,
    strategy: str = "ddp",
    average_every: int | None = None,
    threads: int | None = None,
    workers: int = 0,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train ``model`` on ``data`` and return the history, final scores and trained module.

    ``model``: a name (built with one output per class of the data) or an nn.Module (a deep
    copy is trained; yours is untouched). ``data``: ``"digits"`` (split by ``val_fraction``
    and ``seed``) or a folder with a train and a val split (Tiny ImageNet, or ``train/`` and
    ``val/`` class folders). ``epochs`` defaults to 8 on the digits, 100 on a folder.
    ``batch_size`` is the global batch. ``augment``: any of mask, rotate, flip, noise.
    ``out``: folder for model.safetensors (+ model.json), history.json (rewritten after each
    epoch), curves.png and result.json; None writes nothing. A folder holding an earlier run's
    files is refused unless ``overwrite``. ``nproc > 1`` trains in that many
    processes with ``strategy`` "ddp" or "average" (local SGD, parameters averaged every
    ``average_every`` steps, by default once an epoch); under torchrun the job's processes
    are used instead. ``progress(epoch, epochs, batch, batches)`` is called after each batch.
    Same seed, device and thread count on the CPU: the same history and weights.

    >>> r = train("tiny_alexnet", "digits", epochs=2)  # seconds of training  # doctest: +SKIP
    >>> r.val_accuracy, r.history[-1]["epoch_s"], r.module  # doctest: +SKIP
    """
    if not isinstance(model, (str, nn.Module)):
        raise InvalidInputError(f"model {model!r}: give a model name (dnnmeter models) or an nn.Module")
    if isinstance(model, str):
        from dnnmeter.zoo import resolve

        resolve(model)  # an unknown name fails here, in one line, before any work
    settings = check_settings(
        str(data), epochs=epochs, batch_size=batch_size, lr=lr, augment=augment, out=out, seed=seed,
        device=device, val_fraction=val_fraction, input_size=input_size_for(model, str(data), input_size),
        nproc=nproc, strategy=strategy, average_every=average_every, threads=threads, workers=workers,
        overwrite=overwrite,
    )  # fmt: skip
    return _dispatch(model, settings, progress)


def _dispatch(model: str | nn.Module, s: TrainSettings, progress: Progress | None) -> TrainResult:
    from dnnmeter.distributed import launched_by_torchrun
    from dnnmeter.training import distributed

    if launched_by_torchrun():
        with _local_state(None):
            return distributed.run_in_group(model, s, progress)
    if s.nproc > 1:
        from dnnmeter.training.data import open_splits

        open_splits(s.data, s.input_size, s.seed, s.val_fraction)  # data errors here, not in N children
        return distributed.spawn(model, s, progress)
    with _local_state(s.threads):
        return run(model, s, Sync(), progress)

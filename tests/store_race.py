"""What each process of the store's race tests runs (spawned: a module of its own keeps it light)."""

from __future__ import annotations

from typing import Any


def write_keys(target: str, shared: list[str], own: list[str], barrier: Any, results: Any) -> None:
    """Open the store (racing the others to create its schema), then add every key once."""
    from dnnmeter.store import Store

    barrier.wait(timeout=300)
    with Store(target) as store:
        inserted = [key for key in shared + own if store.add(key, "bench", "race", {"key": key}, batch_size=1)]
    results.put(inserted)

"""The results store: every measurement, with its environment and machine, in SQLite or PostgreSQL.

``Store(target)`` opens a store (a path or an SQLAlchemy URL); :func:`merge_stores` copies
stores into one; :func:`store_info` says what one holds. docs/store.md has the schema, its
versions and the concurrency guarantees.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dnnmeter.errors import StoreError
from dnnmeter.store.database import Row, Store
from dnnmeter.store.machine import MachineIdentity, machine_id, this_machine
from dnnmeter.store.merge import MachineRows, MergedSource, MergeResult, StoreInfo, merge_stores, store_info
from dnnmeter.store.schema import KINDS, SCHEMA_VERSION
from dnnmeter.store.urls import default_store_url, display_url

__all__ = ["KINDS", "SCHEMA_VERSION", "MachineIdentity", "MachineRows", "MergeResult", "MergedSource", "Row",
           "Store", "StoreError", "StoreInfo", "default_store_url", "display_url", "machine_id",
           "measurement_key", "merge_stores", "store_info", "this_machine"]


def measurement_key(kind: str, model: str, **identity: Any) -> str:
    """What makes two measurements the same one: kind, model and the settings that matter."""
    payload = json.dumps({"kind": kind, "model": model, **identity}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]

"""The results store's own commands: store info (what a store holds), store merge (stores into one)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dnnmeter.cli import common
from dnnmeter.errors import InvalidInputError


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**30:.0f} GiB"


def _cmd_info(args: argparse.Namespace) -> int:
    from dnnmeter.store import store_info

    if len(args.stores) != 1 or args.into is not None:
        raise InvalidInputError("`dnnmeter store info` takes one store and no --into; e.g. dnnmeter store info "
                                "study-out/results.sqlite")
    info = store_info(args.stores[0])
    if args.format == "json":
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    from rich.table import Table

    console = common.console()
    print(f"{info.store}: schema {info.schema_version}, {info.rows} rows "
          f"({', '.join(f'{k} {n}' for k, n in info.rows_per_kind.items()) or 'empty'})")
    table = Table(title="rows per machine", title_justify="left")
    for col in ("rows", "host", "CPU", "cores", "memory", "GPU", "OS", "python", "torch", "fingerprint"):
        table.add_column(col, justify="right" if col in ("rows", "cores", "memory") else "left")
    for entry in info.machines:
        m = entry.machine
        if m is None:
            table.add_row(str(entry.rows), "(unknown)", *[""] * 8)
            continue
        table.add_row(str(entry.rows), m.hostname, m.cpu_model or "-", str(m.cpu_cores or "-"),
                      _gib(m.memory_total_bytes), m.gpu_name or "-", m.os or "-", m.python or "-", m.torch or "-",
                      m.fingerprint)
    console.print(table)
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from dnnmeter.store import merge_stores

    if args.into is None:
        raise InvalidInputError("`dnnmeter store merge` needs --into URL, the store to copy into; e.g. "
                                "dnnmeter store merge jetson.sqlite --into postgresql+psycopg://USER@HOST/DB")
    result = merge_stores(args.stores, args.into)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    for source in result.sources:
        print(f"  {source.source}: {source.copied} copied, {source.skipped} already there")
    print(f"dnnmeter: {result.copied} rows copied into {result.into}, {result.skipped} skipped as already there")
    return 0


def _cmd_store(args: argparse.Namespace) -> int:
    return _cmd_merge(args) if args.what == "merge" else _cmd_info(args)


def add_commands(sub: Any) -> None:
    """Add this area's commands to the ``dnnmeter`` parser."""
    store = sub.add_parser(
        "store", help="the results store: what it holds (info), or stores copied into one (merge)",
        description="info STORE: schema version, rows per kind and per machine. merge SRC... --into URL: copy "
        "every row (with its machine) from SRC stores into one, skipping keys already there; run it again and "
        "it copies nothing. A store is a path (an SQLite file) or an SQLAlchemy URL (docs/store.md).",
    )
    store.add_argument("what", choices=("info", "merge"))
    store.add_argument("stores", nargs="+", metavar="STORE", help="paths or URLs")
    store.add_argument("--into", metavar="URL", help="merge: the store to copy into (made if missing)")
    common.add_format_and_run(store, _cmd_store)

"""Connecting to a Ray cluster, its nodes and their machine types, and running the study's
units on it.

Where each unit runs, and why:

- a benchmark sweep (and the ceilings) times something, so no other work may share its
  hardware. On the CPU it asks for *all* the CPUs of one node (``num_cpus`` = that node's CPU
  count) and is sent to that node (node affinity), one at a time per node: the driver hands
  the next sweep to a node as it frees up, so nodes of different sizes are all used and each
  sweep has its node to itself. Asking for all of a node's CPUs (rather than a custom
  resource) needs no setup on the nodes: any ``ray start`` works. The affinity is *soft*, so a
  task whose node died is retried by Ray (``max_retries``) on another node. On CUDA a sweep asks
  for one GPU (and one CPU), so a node with several GPUs runs one sweep per GPU.
- static work (analysis, hardware model, roofline, published accuracy) and evaluation time
  nothing: one CPU each, as many per node as it has CPUs, wherever Ray places them.

Rows reach the store in one of two ways. With a shared server (a ``postgresql...`` URL) each
worker writes its rows as they land, one transaction each, and a retried task first drops
the parts already stored. With a SQLite file, which only this machine can write, a task
returns its rows and the driver writes them when the task has finished; a task that died
wrote nothing, so its retry stores everything once. Either way the store keeps the first
row of a key and ignores a second, so nothing is ever stored twice.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dnnmeter.errors import DnnmeterError, InvalidInputError, MissingDependencyError
from dnnmeter.results.settings import StudySettings
from dnnmeter.store import MachineIdentity, Store, StoreError, this_machine
from dnnmeter.studies.units import EXCLUSIVE_KINDS, Step, Unit, failed, run_unit

RETRIES = 3  # Ray's retries of a task whose worker or node died
RESUBMITS = 2  # then the driver's own, on another node, before the unit is given up as failed
CONNECT_TIMEOUT_S = 5.0
LEASE_HOLD_MS = 10_000  # how long the driver keeps a leased worker while it has tasks for it (Ray: 500)


@dataclass(frozen=True)
class Node:
    """An alive node of the cluster: its Ray id, address, CPUs, GPUs and machine type."""

    node_id: str
    address: str
    cpus: float
    gpus: float
    machine: str


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--engine ray needs Ray, which is not installed; "
                                     "pip install dnnmeter[fleet]") from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail in one line, at once, when nothing listens at ``address`` (``ray.init`` would wait
    a long time before saying so)."""
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInputError(f"bad --address {address!r}; give HOST:PORT of the Ray head, e.g. 10.0.0.1:6379")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise InvalidInputError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}); start one "
                                "with `ray start --head` or give the head's HOST:PORT") from None


def connect(address: str | None, device: str = "cpu") -> Fleet:
    """Join the Ray cluster at ``address`` ("auto": the one this machine belongs to), or start
    a local one when it is None; one-line errors for a missing Ray or an unreachable address."""
    ray = _import_ray()
    if address not in (None, "auto", "local"):
        _check_reachable(address)
    owned = not ray.is_initialized()
    if owned:
        # Ray hands a leased worker back to its raylet every 0.5 s and leases one again, even with
        # more tasks of the same kind queued; on a study's hundreds of short static tasks that
        # round trip (through the head's raylet, for a worker on another node) left that node idle
        # between tasks: 52 ms a task against 15 ms with the lease kept (timm models' static parts
        # on two local nodes of one CPU, on a loaded machine). Read by this driver's task
        # submitter when ray.init starts it, so the variable is put back right after; a user's
        # own setting stays.
        lease_var = "RAY_worker_lease_timeout_milliseconds"
        ours = lease_var not in os.environ
        os.environ.setdefault(lease_var, str(LEASE_HOLD_MS))
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        try:
            if address is None:
                ray.init(include_dashboard=False, **options)
            else:
                ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidInputError(f"cannot join the Ray cluster at {address or 'this machine'}: {first}; "
                                    "check the address and that the head runs this Ray version") from None
        finally:
            if ours:
                os.environ.pop(lease_var, None)
    fleet = Fleet(ray, device, owned)
    where = address or "this machine"
    if not fleet.nodes:
        fleet.close()
        raise InvalidInputError(f"the Ray cluster at {where} has no node with a CPU; add one with `ray start`")
    if device.startswith("cuda") and not any(n.gpus >= 1 for n in fleet.nodes):
        fleet.close()
        raise InvalidInputError(f"--device {device}: no node of the Ray cluster at {where} has a GPU; "
                                "start the GPU nodes with `ray start` (it finds their GPUs) or use --device cpu")
    return fleet


def machine_type(identity: MachineIdentity, device: str = "cpu") -> str:
    """A node's type, for ``--per-machine``: its CPU's name and core count, and its GPU's name
    on CUDA. Not the whole identity: host names (and OS or library versions) differ between
    otherwise identical nodes, which are one type."""
    kind = f"{identity.cpu_model or 'unknown CPU'}, {identity.cpu_cores} cores"
    return f"{kind}, {identity.gpu_name}" if device.startswith("cuda") and identity.gpu_name else kind


def _probe(device: str) -> str:
    return machine_type(this_machine(), device)


def _run_task(unit: Unit, settings: StudySettings, shared: str | None) -> list[Step]:
    """A unit as a Ray task: its steps, with their rows unless the worker stored them itself."""
    steps: list[Step] = []

    def run(unit: Unit, land: Callable[[Step], None]) -> None:
        try:
            run_unit(unit, settings, land)
        except StoreError:
            raise  # the shared store is gone: the study stops (a rerun resumes), not this unit alone
        except DnnmeterError as exc:  # this unit's failure, not the end of the study
            steps.append(failed(unit, exc, sum(s.steps for s in steps)))

    if shared is None:  # the driver writes the rows, under this worker's machine
        run(unit, lambda step: steps.append(replace(
            step, machine=this_machine(step.rows[0].environment if step.rows else None))))
        return steps
    with Store(shared) as store:
        def land(step: Step) -> None:
            for row in step.rows:
                store.add(row.key, row.kind, row.model, row.data, status=row.status, batch_size=row.batch_size,
                          device=row.device, environment=row.environment)
            steps.append(replace(step, rows=()))

        run(unit.still_missing(store.has), land)
    return steps


def shared_url(target: str | Path | None) -> str | None:
    """``target`` when every node can write to it (a database server), else None (a file)."""
    text = str(target or "")
    return text if "://" in text and not text.startswith("sqlite") else None


class Fleet:
    """A joined cluster: ``run`` sends units to it; ``close`` leaves it (and stops the local
    cluster this study started)."""

    def __init__(self, ray: Any, device: str, owned: bool) -> None:
        self._ray, self._device, self._owned = ray, device, owned
        alive = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = ray.remote(_probe)
        types = ray.get([probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(device) for n in alive])
        self.nodes = [Node(n["NodeID"], n["NodeManagerAddress"], n["Resources"]["CPU"],
                           n["Resources"].get("GPU", 0.0), kind) for n, kind in zip(alive, types)]

    def machine_types(self) -> tuple[str, ...]:
        """The distinct machine types among the nodes that can run a benchmark (those with a GPU
        on CUDA), sorted: the fleet's node types."""
        cuda = self._device.startswith("cuda")
        return tuple(sorted({n.machine for n in self.nodes if n.gpus >= 1 or not cuda}))

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()

    def _alive(self) -> set[str]:
        return {n["NodeID"] for n in self._ray.nodes() if n.get("Alive")}

    def run(self, units: list[Unit], settings: StudySettings, target: str | Path | None,
            land: Callable[[Step], None]) -> None:
        """Run ``units`` as tasks; each task's steps land (in the driver) as the task finishes."""
        from ray.exceptions import RayTaskError
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray, cuda = self._ray, self._device.startswith("cuda")
        task = ray.remote(max_retries=RETRIES)(_run_task)
        shared = shared_url(target)
        slots = {n.node_id: (int(n.gpus) if cuda else 1) for n in self.nodes}
        nodes = {n.node_id: n for n in self.nodes}
        running: dict[Any, tuple[Unit, str | None, int]] = {}
        waiting: deque[tuple[Unit, int]] = deque()
        for unit in units:
            if unit.kind in EXCLUSIVE_KINDS:
                waiting.append((unit, 0))
            else:  # nothing timed: one CPU each, packed by Ray
                ref = task.options(num_cpus=1, num_gpus=1 if cuda and unit.kind == "evaluation" else 0).remote(
                    unit, settings, shared)
                running[ref] = (unit, None, 0)

        def dispatch() -> None:
            for _ in range(len(waiting)):
                unit, tries = waiting.popleft()
                node = next((nodes[i] for i, free in slots.items() if free > 0 and i in nodes
                             and unit.machine in (None, nodes[i].machine)), None)
                if node is None:
                    waiting.append((unit, tries))
                    continue
                slots[node.node_id] -= 1
                resources = {"num_gpus": 1, "num_cpus": 1} if cuda else {"num_cpus": node.cpus}
                ref = task.options(**resources, scheduling_strategy=NodeAffinitySchedulingStrategy(
                    node.node_id, soft=True)).remote(replace(unit, machine=node.machine), settings, shared)
                running[ref] = (unit, node.node_id, tries)

        checked = time.monotonic()
        while waiting or running:
            dispatch()
            if not running:  # waiting units, and no alive node that can run them
                for unit, _ in waiting:
                    land(_given_up(unit, "no alive node left" if unit.machine is None
                                   else f"no alive node of machine type {unit.machine!r}"))
                return
            ready, _ = ray.wait(list(running), num_returns=1, timeout=2.0)
            if time.monotonic() - checked > 2.0:  # a dead node takes no more units
                alive = self._alive()
                nodes = {i: n for i, n in nodes.items() if i in alive}
                checked = time.monotonic()
            for ref in ready:
                unit, node_id, tries = running.pop(ref)
                if node_id is not None:
                    slots[node_id] += 1
                try:
                    steps = ray.get(ref)
                except RayTaskError as exc:  # the store gone, or a bug (a unit's dnnmeter error is a step)
                    if isinstance(exc.cause, DnnmeterError):
                        raise exc.cause from None  # said in one line, as the local engine would
                    raise
                except ray.exceptions.RayError as exc:  # its worker or node died, Ray's retries spent
                    if tries < RESUBMITS and unit.kind in EXCLUSIVE_KINDS:
                        waiting.append((unit, tries + 1))
                    elif tries < RESUBMITS:
                        running[task.options(num_cpus=1).remote(unit, settings, shared)] = (unit, None, tries + 1)
                    else:
                        land(_given_up(unit, str(exc).splitlines()[0]))
                    continue
                for step in steps:
                    land(step)


def _given_up(unit: Unit, why: str) -> Step:
    return Step(f"{unit.model}: {unit.kind} not run", False, steps=unit.steps,
                note=f"{unit.model}: {unit.kind} not run on the cluster ({why}); run the study again to retry it")

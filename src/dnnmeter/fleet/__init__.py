"""The study over a Ray cluster: each unit of work (dnnmeter.studies.units) becomes a Ray
task. ``dnnmeter study --engine ray [--address ADDR] [--per-machine]``; docs/fleet.md.

Ray is an optional extra (``pip install dnnmeter[fleet]``) and is imported only here, when a
study asks for it.
"""

from __future__ import annotations

from dnnmeter.fleet.cluster import Fleet, Node, connect

__all__ = ["Fleet", "Node", "connect"]

"""Seed architectures that neither torchvision nor timm has (placeholder; filled in below)."""

from __future__ import annotations

from dnnmeter.zoo.registry import Registry


def populate(registry: Registry) -> None:
    return None

"""The meta-device count is the same inside a caller's ``torch.inference_mode`` (it was 0 MACs)."""

from __future__ import annotations

import torch

from dnnmeter.analysis import analyze


def test_analysis_under_inference_mode_counts_the_same() -> None:
    outside = analyze("resnet18")
    with torch.inference_mode():
        inside = analyze("resnet18")
    assert inside.macs == outside.macs > 0
    assert [layer.macs for layer in inside.layers] == [layer.macs for layer in outside.layers]

"""The seed studies' figures where the architecture is the same as ours.

The hardware-perspective study's table: VGG-16 138,357,544 parameters and 31.06 GFLOPs,
VGG-19 143,667,240 and 39.40 GFLOPs (its GFLOPs are 2 x GMACs), within 1%. And its slide:
in AlexNet and VGG the FC layers hold most parameters and the conv layers most operations;
in ResNet, Inception and Xception the conv layers dominate both.
"""

from __future__ import annotations

import pytest

from dnnmeter import analyze


@pytest.mark.parametrize(("name", "params", "gflops"), [("vgg16", 138_357_544, 31.06), ("vgg19", 143_667_240, 39.40)])
def test_vgg_matches_the_seed_table(name: str, params: int, gflops: float) -> None:
    a = analyze(name)
    assert a.params == params
    assert 2 * a.macs / 1e9 == pytest.approx(gflops, rel=0.01)


@pytest.mark.parametrize("name", ["alexnet", "vgg16", "vgg19"])
def test_fc_holds_the_parameters_and_conv_the_work(name: str) -> None:
    a = analyze(name)
    split = a.conv_vs_fc()
    assert split["fc"].params > 0.5 * a.params
    assert split["conv"].macs > 0.9 * a.macs


@pytest.mark.parametrize("name", ["resnet50", "resnet152", "inception_v3", "timm:inception_v4", "timm:legacy_xception"])
def test_conv_dominates_both(name: str) -> None:
    a = analyze(name)
    split = a.conv_vs_fc()
    assert split["conv"].params > 0.85 * a.params
    assert split["conv"].macs > 0.99 * a.macs

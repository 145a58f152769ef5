"""The zoo against an external reference: torchvision's published weight metadata.

``num_params`` must match exactly; ``_ops`` ("GFLOPS", in fact GMACs) to its three
printed decimals for at least 95% of the models and within 1% for all (or within the
published rounding, 0.0005 GMACs, for models under 0.05 GMACs such as shufflenet_v2_x0_5).
"""

from __future__ import annotations

import pytest
import torchvision

from dnnmeter import analyze

ALL = torchvision.models.list_models(module=torchvision.models)
QUICK = ["alexnet", "resnet50", "vit_b_16", "swin_v2_t", "efficientnet_b0", "regnet_y_400mf",
         "mobilenet_v3_large", "densenet121", "maxvit_t", "shufflenet_v2_x0_5"]


def _check(name: str) -> bool:
    a = analyze(name)
    pub = a.published
    assert pub is not None and pub.params is not None and pub.gmacs is not None
    assert a.params == pub.params
    # Published figures are rounded to 0.001 GMACs, more than 1% of the smallest models.
    assert abs(a.macs / 1e9 - pub.gmacs) <= max(0.01 * pub.gmacs, 0.0005)
    assert sum(layer.params for layer in a.layers) == a.params
    return round(a.macs / 1e9, 3) == round(pub.gmacs, 3)


@pytest.mark.parametrize("name", QUICK)
def test_quick_subset_matches_published(name: str) -> None:
    assert _check(name)


@pytest.mark.timeout(3600)  # every torchvision model
@pytest.mark.slow
def test_whole_zoo_matches_published() -> None:
    exact = [name for name in ALL if _check(name)]
    assert len(exact) >= 0.95 * len(ALL), sorted(set(ALL) - set(exact))

"""Published ImageNet accuracy of the seed networks that no library publishes a figure for.

torchvision's weights carry their own accuracy (``ModelEntry.published``); BN-AlexNet, BN-NIN,
Inception-v4 and Xception have figures only in papers and in their authors' files, and
ENet, NIN and the Tiny-ImageNet family have none. Each figure keeps its source (paper and
table, or file) beside it, and each network without one says why; the study stores the
figures labelled ``published`` and the report shows the reasons. docs/seed-models.md
lists them.

>>> from dnnmeter.zoo.seed_accuracy import published_accuracy, no_accuracy_reason
>>> published_accuracy("bn_alexnet").top1
0.566
>>> no_accuracy_reason("enet")
'no published single-crop figure found (the ENet paper reports segmentation only)'
"""

from __future__ import annotations

from dnnmeter.zoo.registry import Published

# ImageNet-1k validation, top-1 and top-5 as fractions, one centre crop, one model, for the
# seed networks that no library publishes a figure for; each with its source (paper, table
# or file). Only figures read in their source are here: docs/seed-models.md.
PUBLISHED_ACCURACY: dict[str, Published] = {
    "bn_alexnet": Published(
        top1=0.5660,
        source="published (Zagoruyko, imagenet-validation.torch README: bn-alexnet, top-1 central crop "
        "56.60%; the re-evaluation Canziani et al. 2017 cite)"),
    "bn_nin": Published(
        top1=0.626,
        source="published (soumith/imagenet-multiGPU.torch, models/ninbn.lua header: 62.6% top-1 on the "
        "validation set at 35 epochs; its donkey.lua tests on one 224 centre crop)"),
    "timm:inception_v4": Published(
        top1=0.800, top5=0.950,
        source="published (Szegedy et al. 2016, Inception-v4, Inception-ResNet and the Impact of Residual "
        "Connections on Learning, arXiv:1602.07261, Table 2: single crop, single model, top-1 error 20.0%, "
        "top-5 error 5.0%, on the non-blacklisted subset of the ILSVRC 2012 validation set)"),
    "timm:legacy_xception": Published(
        top1=0.790, top5=0.945,
        source="published (Chollet 2017, Xception: Deep Learning with Depthwise Separable Convolutions, "
        "Table 1: ImageNet, single crop, single model)"),
}  # fmt: skip

NOT_FOUND = "no published single-crop figure found"
_TINY_IMAGENET = ("no published ImageNet figure: a Tiny-ImageNet network (64x64, 200 classes); "
                  "`dnnmeter study modifications` measures its accuracy on the data it trains on")

# Why a seed network has no published figure; shown in the report instead of a number.
NO_PUBLISHED_ACCURACY: dict[str, str] = {
    "nin": NOT_FOUND,
    "enet": f"{NOT_FOUND} (the ENet paper reports segmentation only)",
    "tiny_alexnet": _TINY_IMAGENET,
    "tiny_alexnet_dw": _TINY_IMAGENET,
    "tiny_alexnet_dw_res": _TINY_IMAGENET,
}


def published_accuracy(name: str) -> Published | None:
    """The published ImageNet accuracy this module knows for ``name`` (seed and timm names)."""
    return PUBLISHED_ACCURACY.get(name)


def no_accuracy_reason(name: str) -> str | None:
    """Why ``name`` has no published accuracy, where that is known."""
    return NO_PUBLISHED_ACCURACY.get(name)

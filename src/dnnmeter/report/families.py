"""One colour per architecture family, the same in every figure.

Canziani et al. give each family one hue throughout their paper so that a reader follows a
network from figure to figure; we do the same. Colours come from colour-blind-safe palettes
(Okabe & Ito 2008; Paul Tol's "muted" and "bright" schemes). Known families have fixed
colours; any other family gets a colour chosen by a stable hash of its name, so it keeps its
colour across runs and machines.

>>> colour("resnet")
'#CC79A7'
>>> colour("mobilenetv2") == colour("mobilenet")
True
"""

from __future__ import annotations

import hashlib
import re

# Okabe-Ito first (the most distinct for colour-blind readers), then Tol's muted, bright and
# dark. Pale colours (Okabe-Ito's yellow, Tol's pale grey and cyan) are left out: small markers
# in them vanish on a white background.
PALETTE: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#332288",
    "#882255", "#44AA99", "#999933", "#AA4499", "#117733", "#DDCC77", "#CC6677", "#4477AA",
    "#AA3377", "#663333", "#225555", "#666633",
)

# The seed studies' families take the most distinct colours, since they appear together.
FAMILY_COLOURS: dict[str, str] = {
    "alexnet": "#0072B2",
    "tiny_alexnet": "#332288",  # a darker blue: the AlexNet-like network of the course study
    "vgg": "#D55E00",
    "resnet": "#CC79A7",
    "inception": "#009E73",
    "googlenet": "#44AA99",  # Inception v1: a hue near Inception's, as the paper groups authors
    "xception": "#E69F00",
    "mobilenet": "#56B4E9",
    "nin": "#999933",
    "enet": "#882255",
    "densenet": "#AA4499",
    "efficientnet": "#DDCC77",
    "regnet": "#225555",
    "squeezenet": "#663333",
    "shufflenet": "#AA3377",
    "mnasnet": "#117733",
    "vit": "#000000",
    "swin": "#4477AA",
    "convnext": "#CC6677",
    "maxvit": "#666633",
}

# Names that sources use for the same family (torchvision names families by module).
ALIASES: dict[str, str] = {
    "vision_transformer": "vit",
    "swin_transformer": "swin",
    "bn_alexnet": "alexnet",
    "bn_nin": "nin",
    "resnext": "resnet",
    "wide_resnet": "resnet",
    "legacy_xception": "xception",
}


def family_key(family: str) -> str:
    """The canonical family name: lower case, aliases resolved, version suffixes dropped."""
    key = family.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key in FAMILY_COLOURS:
        return key
    # "mobilenetv2", "shufflenetv2", "inception_v3", "vgg16": the family is the name
    # without its trailing version, so variants share their family's colour.
    bare = re.sub(r"(_?v\d+|\d+)$", "", key)
    return ALIASES.get(bare, bare)


def colour(family: str | None) -> str:
    """Hex colour for ``family``: fixed for known families, a stable hashed pick otherwise."""
    key = family_key(family or "unknown")
    if key in FAMILY_COLOURS:
        return FAMILY_COLOURS[key]
    # sha1, not hash(): Python salts str hashes per process, and colours must not change.
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return PALETTE[int.from_bytes(digest[:4], "big") % len(PALETTE)]

"""The model zoo: names, sources, default input sizes, published metadata, errors."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torchvision
from torch import nn

from dnnmeter import SEED_MODELS, UnknownModelError, create_model, list_models, resolve
from dnnmeter.errors import ModelBuildError

TORCHVISION = torchvision.models.list_models(module=torchvision.models)


def test_every_torchvision_classification_model_is_listed() -> None:
    listed = {e.name for e in list_models(source="torchvision")}
    assert listed == set(TORCHVISION) and len(listed) == 80


def test_seed_list_resolves() -> None:
    for name in SEED_MODELS:
        assert resolve(name).name == name


@pytest.mark.parametrize(
    ("name", "size"),
    [("vit_h_14", 518), ("inception_v3", 299), ("efficientnet_b7", 600), ("resnet50", 224),
     ("timm:inception_v4", 299), ("tiny_alexnet", 64)],
)
def test_default_input_size_is_the_models_own(name: str, size: int) -> None:
    assert resolve(name).input_size == (3, size, size)


def test_models_are_built_as_their_default_weights_build_them() -> None:
    googlenet = create_model("googlenet")
    assert googlenet.aux1 is None and googlenet.aux2 is None and googlenet.transform_input
    assert create_model("vit_h_14").image_size == 518
    assert create_model("inception_v3").AuxLogits is not None


def test_meta_models_hold_no_storage_and_cpu_models_do() -> None:
    meta = create_model("resnet18")
    assert all(p.is_meta for p in meta.parameters()) and not meta.training
    cpu = create_model("resnet18", device="cpu")
    assert all(p.device.type == "cpu" for p in cpu.parameters())
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in cpu.parameters())


def test_meta_init_restores_what_it_patched() -> None:
    import torch

    create_model("efficientnet_b0")
    assert "normal_" not in torch.Tensor.__dict__
    assert nn.Module.register_parameter.__qualname__ == "Module.register_parameter"
    assert torch.empty(3).normal_().abs().sum() > 0  # init works again on real tensors


def test_published_metadata_is_labelled_published() -> None:
    pub = resolve("resnet50").published
    assert pub is not None and pub.source.startswith("published")
    assert pub.params == 25_557_032 and pub.gmacs == pytest.approx(4.089)
    assert pub.top1 == pytest.approx(0.80858) and pub.input_size == (3, 224, 224)
    assert resolve("tiny_alexnet").published is None


def test_unknown_name_names_the_closest_matches() -> None:
    with pytest.raises(UnknownModelError, match=r"unknown model 'resnet5'; did you mean .*resnet50"):
        resolve("resnet5")
    with pytest.raises(UnknownModelError, match="timm:legacy_xception"):
        resolve("timm:legacy_xceptoin")


def test_list_models_by_pattern_and_source() -> None:
    names = [e.name for e in list_models("resnet*")]
    assert names == sorted(names) and "resnet50" in names and "resnext50_32x4d" not in names
    assert {e.source for e in list_models(source="seed")} == {"seed"}
    timm_names = [e.name for e in list_models("*xception*", source="timm")]
    assert "timm:legacy_xception" in timm_names


def test_user_callable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_models.py").write_text(textwrap.dedent("""
        from torch import nn
        def small(num_classes=3):
            return nn.Sequential(nn.Flatten(), nn.Linear(12, num_classes))
        small.input_size = (3, 2, 2)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = resolve("my_models:small")
    assert entry.source == "python" and entry.input_size == (3, 2, 2)
    assert sum(p.numel() for p in create_model("my_models:small").parameters()) == 39
    with pytest.raises(ModelBuildError, match="has no attribute"):
        resolve("my_models:nothing")
    with pytest.raises(ModelBuildError, match="cannot import"):
        resolve("no_such_pkg_xyz:build")
    sys.modules.pop("my_models", None)


SIZES_ITS_HEAD = '''
import torch
from torch import nn


class SizesItsHead(nn.Module):
    """Runs a forward on a tensor it made to size its head, as some timm models do."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
        width = self.features(torch.zeros(1, 3, 32, 32)).flatten(1).shape[1]
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def build():
    return SizesItsHead()
'''


def test_a_constructor_that_runs_a_forward_builds_on_meta_and_counts(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from dnnmeter.analysis import analyze
    from dnnmeter.zoo import create_model

    (tmp_path / "dnm_sizes_its_head.py").write_text(SIZES_ITS_HEAD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "dnm_sizes_its_head", raising=False)
    model = create_model("dnm_sizes_its_head:build")
    assert all(p.is_meta for p in model.parameters())
    # conv 8*3*3*3 + 8, bn 2*8, linear 8*30*30*10 + 10: counted by hand
    assert analyze("dnm_sizes_its_head:build", input_size=(3, 32, 32)).params == 224 + 16 + 72_010

"""The one codec: dataclasses to JSON-ready data and back, tolerant of other versions."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from dnnmeter._serial import Record, SerialError, from_dict, to_dict
from dnnmeter.analysis.result import Analysis, LayerCost
from dnnmeter.measure.result import BenchResult
from dnnmeter.transforms.result import Change, Cost, ModifyResult


class Colour(enum.Enum):
    RED = "red"


@dataclass
class Inner(Record):
    values: tuple[int, ...]
    ratio: float = 1.0


@dataclass
class Outer(Record):
    name: str
    inner: Inner
    pair: tuple[int, str]
    by_name: dict[str, Inner] = field(default_factory=dict)
    maybe: Inner | None = None
    items: list[Inner] = field(default_factory=list)
    colour: Colour = Colour.RED
    secret: str = "kept elsewhere"
    note: str | None = None

    _derived: ClassVar[tuple[str, ...]] = ("size",)
    _omitted: ClassVar[tuple[str, ...]] = ("secret",)
    _omitted_if_none: ClassVar[tuple[str, ...]] = ("note",)

    @property
    def size(self) -> int:
        return len(self.inner.values)


def test_nested_dataclasses_round_trip_through_json():
    obj = Outer("a", Inner((1, 2)), (3, "x"), {"k": Inner((4,), 0.5)}, Inner(()), [Inner((5,))], note="n")
    data = json.loads(json.dumps(obj.to_dict()))
    assert data["inner"] == {"values": [1, 2], "ratio": 1.0} and data["size"] == 2 and data["colour"] == "red"
    assert "secret" not in data
    assert Outer.from_dict(data) == obj


def test_unknown_keys_are_ignored_and_missing_ones_take_their_defaults():
    data = {"name": "a", "inner": {"values": [1], "from_a_later_version": True}, "pair": [1, "y"], "extra": 0}
    obj = from_dict(Outer, data)
    assert obj.inner == Inner((1,)) and obj.maybe is None and obj.by_name == {}
    assert "note" not in to_dict(obj)  # None and listed in _omitted_if_none


def test_a_missing_required_key_is_a_one_line_error():
    with pytest.raises(SerialError, match=r"Outer: no 'inner' in the stored data"):
        from_dict(Outer, {"name": "a", "pair": [1, "y"]})
    with pytest.raises(SerialError, match=r"Outer.inner: expected a mapping for Inner"):
        from_dict(Outer, {"name": "a", "inner": [1], "pair": [1, "y"]})


def test_results_round_trip():
    layer = LayerCost("conv1", "conv", "Conv2d", [[1, 3, 8, 8]], [[1, 4, 8, 8]], params=108, macs=6912)
    a = Analysis("m", (3, 8, 8), 1, 108, 108, 6912, 0, 256, 432, [layer], unsupported_ops={"aten::x": 1})
    data = json.loads(json.dumps(a.to_dict()))
    assert data["flops"] == 2 * 6912 and data["layers"][0]["flops"] == 2 * 6912
    assert data["by_kind"]["conv"]["macs"] == 6912
    assert Analysis.from_dict(data) == a
    assert a.to_dict(per_layer=False)["layers"] == []

    bench = BenchResult("m", "cpu", 2, (3, 8, 8), "float32", 1, latency_s_median=0.5, samples_s=[0.5, 0.5])
    data = json.loads(json.dumps(bench.to_dict()))
    assert data["n_samples"] == 2 and data["input_size"] == [3, 8, 8]
    assert BenchResult.from_dict(data) == bench

    cost = Cost(10, 20, 40, 0, 5, 40)
    r = ModifyResult("m", ["op"], cost, Cost(5, 10, 20, 0, 5, 20), None, (3, 8, 8), 1, [Change("c", "op", "d", "fx")])
    data = json.loads(json.dumps(r.to_dict()))
    assert data["ratio"]["macs"] == 0.5
    assert ModifyResult.from_dict(data) == r

"""Energy estimates from access counts and a table of costs per access. Always estimates.

A table (:class:`EnergyTable`) is data: a cost per access for each memory level and a cost
per MAC for a few arithmetic precisions. Two are built in, and a user's own is loaded from a
JSON or TOML file with :func:`load_energy_table`:

- ``eyeriss``: Chen et al. (Eyeriss, ISCA 2016, Fig. 6), normalised to one 16-bit MAC:
  ALU 1, register file 1, array / NoC (PE to PE) 2, global buffer 6, DRAM 200.
- ``45nm``: Horowitz (ISSCC 2014, "Computing's energy problem"), 45 nm, 0.9 V, in joules:
  multiply and add of 8-bit int (0.2 + 0.03 pJ), 32-bit int (3.1 + 0.1 pJ), 16-bit float
  (1.1 + 0.4 pJ), 32-bit float (3.7 + 0.9 pJ); a 32-bit read of an 8 KB SRAM 5 pJ (half of
  the table's 10 pJ for 64 bits from an 8 KB cache); a 32-bit DRAM access 640 pJ (as Han et
  al., ISCA 2016, quote from the same talk). It has no register file or PE-to-PE level.

Scaling with precision: a memory access moves ``bits`` bits, so its cost is the table's
cost per ``reference_bits`` word times ``bits / reference_bits`` (energy per bit constant).
A MAC costs the table's arithmetic entry nearest ``bits`` (ties: the larger), of type int or
float (``number``; by default int up to 8 bits, float above).

Where accesses are put (:func:`access_profile`):

- ``naive``: every one of the 4 accesses per MAC goes to DRAM.
- ``reuse`` (ideal hierarchy): every MAC's 4 operand accesses hit the register file;
  convolutional and partial-sum reuse are captured there, so the array carries the
  accesses left after them; filter and image reuse are captured by multicast in the array,
  so the global buffer serves each weight, input and output once; DRAM moves each once
  (the lower bound).
- a :class:`~dnnmeter.hardware.systolic.SystolicResult`: the buffer level is its SRAM
  reads and writes, DRAM its DRAM traffic; PE-to-PE register transfers are not counted.

A level the table lacks is charged at the next level out (rf -> array -> buffer -> dram):
data with no register file to live in comes from the buffer.

>>> from dnnmeter.hardware import estimate_energy, original_alexnet_layers
>>> e = estimate_energy(original_alexnet_layers(), "eyeriss", bits=16, scenario="reuse")
>>> e.label, e.unit, e.by_level["dram"]
('estimated', 'normalized', 12405792600.0)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dnnmeter._serial import Record
from dnnmeter.errors import InvalidInputError, MissingDependencyError
from dnnmeter.hardware.accesses import AccessReport, count_accesses
from dnnmeter.hardware.layers import LayerShape
from dnnmeter.hardware.systolic import SystolicResult
from dnnmeter.registry import Registry, UnknownNameError

__all__ = [
    "ENERGY_TABLES",
    "LEVELS",
    "ArithmeticCost",
    "EnergyEstimate",
    "EnergyTable",
    "access_profile",
    "estimate_energy",
    "get_energy_table",
    "load_energy_table",
]

# Memory levels from the ALU outwards; "alu" counts MACs, the rest count word accesses.
LEVELS: tuple[str, ...] = ("alu", "rf", "array", "buffer", "dram")
SCENARIOS: tuple[str, ...] = ("naive", "reuse")


@dataclass(frozen=True, slots=True)
class ArithmeticCost:
    """The cost of one MAC (a multiply and an add) at one precision, in the table's unit."""

    type: str  # "int" or "float"
    bits: int
    mult: float
    add: float = 0.0

    @property
    def mac(self) -> float:
        return self.mult + self.add


@dataclass(frozen=True)
class EnergyTable(Record):
    """Costs per access by level (per ``reference_bits`` word) and per MAC by precision.

    ``unit`` is "J" (absolute) or "normalized" (relative to one ALU operation)."""

    name: str
    unit: str
    reference_bits: int
    levels: dict[str, float]
    arithmetic: tuple[ArithmeticCost, ...]
    source: str = ""
    notes: str = ""

    def mac_cost(self, bits: int, number: str = "auto") -> ArithmeticCost:
        """The arithmetic entry nearest ``bits`` of type ``number`` (int/float; "auto": int up
        to 8 bits, float above); falls back to any type when the table has none of it."""
        wanted = ("int" if bits <= 8 else "float") if number == "auto" else number
        pool = [a for a in self.arithmetic if a.type == wanted] or list(self.arithmetic)
        return min(pool, key=lambda a: (abs(a.bits - bits), -a.bits))

    def access_cost(self, level: str, bits: int) -> float:
        """Cost of one ``bits``-bit access at ``level``, or at the next level out if absent."""
        for candidate in LEVELS[LEVELS.index(level):]:
            if candidate in self.levels:
                return self.levels[candidate] * bits / self.reference_bits
        raise InvalidInputError(f"energy table {self.name!r} has no cost for {level!r} or any level beyond it")



_PJ = 1e-12

EYERISS = EnergyTable(
    name="eyeriss",
    unit="normalized",
    reference_bits=16,
    levels={"rf": 1.0, "array": 2.0, "buffer": 6.0, "dram": 200.0},
    arithmetic=(ArithmeticCost("int", 16, 1.0),),  # the ALU's whole MAC is the unit
    source="Chen, Emer, Sze: Eyeriss, ISCA 2016, Fig. 6 (65 nm, 16-bit fixed point)",
    notes="normalised energy per 16-bit access; ALU = 1 per MAC",
)

HOROWITZ_45NM = EnergyTable(
    name="45nm",
    unit="J",
    reference_bits=32,
    levels={"buffer": 5.0 * _PJ, "dram": 640.0 * _PJ},
    arithmetic=(
        ArithmeticCost("int", 8, 0.2 * _PJ, 0.03 * _PJ),
        ArithmeticCost("int", 32, 3.1 * _PJ, 0.1 * _PJ),
        ArithmeticCost("float", 16, 1.1 * _PJ, 0.4 * _PJ),
        ArithmeticCost("float", 32, 3.7 * _PJ, 0.9 * _PJ),
    ),
    source="Horowitz, Computing's energy problem, ISSCC 2014 (45 nm, 0.9 V)",
    notes=("buffer: 32-bit read of an 8 KB SRAM (10 pJ per 64 bits halved); "
           "dram: 640 pJ per 32-bit access; no register-file or PE-to-PE figure, "
           "so those accesses are charged as buffer reads"),
)

# Built-in tables by name (the names the CLI offers are dnnmeter.names.ENERGY_TABLES).
ENERGY_TABLES: Registry[EnergyTable] = Registry("energy table")
for _table in (EYERISS, HOROWITZ_45NM):
    ENERGY_TABLES.register(_table.name, _table)
del _table


def _table_from_dict(data: Mapping[str, Any], origin: str) -> EnergyTable:
    try:
        levels = {str(k): float(v) for k, v in data["levels"].items()}
        arithmetic = tuple(
            ArithmeticCost(str(a.get("type", "int")), int(a["bits"]),
                           float(a["mac"]) if "mac" in a else float(a["mult"]),
                           0.0 if "mac" in a else float(a.get("add", 0.0)))
            for a in data["arithmetic"]
        )
        table = EnergyTable(name=str(data.get("name", origin)), unit=str(data.get("unit", "J")),
                            reference_bits=int(data.get("reference_bits", 32)), levels=levels,
                            arithmetic=arithmetic, source=str(data.get("source", origin)),
                            notes=str(data.get("notes", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInputError(
            f"{origin}: not an energy table ({exc}); it needs 'levels' (level -> cost per access) "
            "and 'arithmetic' (a list of {type, bits, mult, add} or {type, bits, mac}); "
            "see docs/hardware.md"
        ) from None
    unknown = set(levels) - set(LEVELS[1:])
    if unknown or not arithmetic:
        raise InvalidInputError(
            f"{origin}: unknown levels {sorted(unknown)} (use {', '.join(LEVELS[1:])})" if unknown
            else f"{origin}: 'arithmetic' needs at least one entry"
        )
    return table


def _parse_toml(text: str) -> dict[str, Any]:
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise MissingDependencyError("reading a TOML energy table on Python 3.10 needs tomli: "
                                         "pip install tomli (or give the table as JSON)") from None
    return tomllib.loads(text)


def load_energy_table(path: str | Path) -> EnergyTable:
    """An energy table from a JSON or TOML file (format in docs/hardware.md)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInputError(f"cannot read energy table {path}: {exc.strerror}") from None
    is_toml = path.suffix.lower() == ".toml"
    try:
        data = _parse_toml(text) if is_toml else json.loads(text)
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise InvalidInputError(f"{path}: not valid {'TOML' if is_toml else 'JSON'}: {exc}") from None
    return _table_from_dict(data, str(path))


def get_energy_table(table: str | Path | EnergyTable) -> EnergyTable:
    """A built-in table by name (``eyeriss``, ``45nm``), a table file, or the table itself."""
    if isinstance(table, EnergyTable):
        return table
    if str(table) in ENERGY_TABLES:
        return ENERGY_TABLES.get(str(table))
    if Path(table).suffix.lower() in (".json", ".toml"):
        return load_energy_table(table)
    raise UnknownNameError(f"{ENERGY_TABLES.unknown(str(table), choose=True)}, or a .json/.toml file")


# --- where the accesses go -----------------------------------------------------------------


def access_profile(source: AccessReport | SystolicResult, scenario: str = "reuse") -> dict[str, int]:
    """Counts per level (MACs for ``alu``, word accesses for the others)."""
    if isinstance(source, SystolicResult):
        sram = sum(source.sram_reads.values()) + sum(source.sram_writes.values())
        return {"alu": source.macs, "buffer": sram, "dram": source.dram_accesses}
    if scenario == "naive":
        return {"alu": source.macs, "dram": source.naive_accesses}
    if scenario != "reuse":
        raise InvalidInputError(f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)}")
    reuse = source.by_reuse
    conv, all_reuse = reuse["convolutional"], reuse["all"]
    # Leaving the register file: what convolutional and partial-sum reuse cannot keep there.
    array = conv.weight_reads + conv.input_reads + all_reuse.psum_writes
    return {"alu": source.macs, "rf": source.naive_accesses, "array": array,
            "buffer": all_reuse.total, "dram": source.lower_bound}


@dataclass(frozen=True)
class EnergyEstimate(Record):
    """An estimated energy, by level, in ``unit`` ("J" or "normalized"). Never a measurement."""

    table: str
    unit: str
    bits: int
    scenario: str
    accesses_by_level: dict[str, int]
    by_level: dict[str, float]
    mac_cost: ArithmeticCost
    source: str
    label: str = "estimated"
    notes: list[str] = field(default_factory=list)

    _derived: ClassVar[tuple[str, ...]] = ("total", "energy_j")

    @property
    def total(self) -> float:
        return sum(self.by_level.values())

    @property
    def energy_j(self) -> float | None:
        """The total in joules, or None for a normalised table (it has no absolute scale)."""
        return self.total if self.unit == "J" else None



def estimate_energy(
    source: Iterable[LayerShape] | AccessReport | SystolicResult,
    table: str | Path | EnergyTable = "eyeriss",
    bits: int | None = None,
    scenario: str = "reuse",
    number: str = "auto",
) -> EnergyEstimate:
    """Estimated energy of ``source``: layers, their :class:`AccessReport`, or a systolic run.

    ``table`` is ``eyeriss``, ``45nm``, a .json/.toml file or an :class:`EnergyTable`.
    ``bits`` is the word size (default 16, or a systolic result's own). ``scenario``
    ("naive" or "reuse") says where layers' accesses go; a systolic result carries its own
    counts (scenario "systolic"). ``number`` picks int or float arithmetic ("auto": int up to
    8 bits)."""
    energy_table = get_energy_table(table)
    if isinstance(source, SystolicResult):
        if bits is not None and bits != source.bits:
            raise InvalidInputError(f"bits={bits} differs from the systolic run's {source.bits}; "
                                    "simulate at the precision you want to cost")
        bits, scenario, profile = source.bits, "systolic", access_profile(source)
    else:
        bits = 16 if bits is None else bits
        report = source if isinstance(source, AccessReport) else count_accesses(source)
        profile = access_profile(report, scenario)
    if not isinstance(bits, int) or bits < 1:
        raise InvalidInputError(f"bad precision {bits!r}: give bits per word, e.g. 8 or 16")
    mac = energy_table.mac_cost(bits, number)
    by_level = {level: count * (mac.mac if level == "alu" else energy_table.access_cost(level, bits))
                for level, count in profile.items()}
    notes = [f"{level} accesses charged at the table's next level out (it has no {level} cost)"
             for level in profile if level != "alu" and level not in energy_table.levels]
    if mac.bits != bits:
        notes.append(f"MACs costed as {mac.bits}-bit {mac.type}, the table's nearest to {bits} bits")
    return EnergyEstimate(table=energy_table.name, unit=energy_table.unit, bits=bits, scenario=scenario,
                          accesses_by_level=profile, by_level=by_level, mac_cost=mac,
                          source=energy_table.source, notes=notes)

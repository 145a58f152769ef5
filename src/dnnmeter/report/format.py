"""Numbers to text: the one place in the report layer (and for the CLI's tables) where a
figure becomes a string. A missing figure is always "-".

Data hold SI base units (seconds, bytes, joules, fractions); people read ms, MB, %, M and G.

>>> ms(0.0123456), ms(0.0123456, significant=True), pct(0.7576), millions(11_689_512)
('12.346', '12.3', '75.76%', '11.69')
>>> si(1_814_073_344), num(1234.5), num(None)
('1.81 G', '1,234', '-')
"""

from __future__ import annotations

from collections.abc import Sequence

MISSING = "-"


def num(value: float | None, digits: int = 3, scale: float = 1.0) -> str:
    """``value x scale`` with ``digits`` significant digits (whole numbers when larger)."""
    if value is None:
        return MISSING
    v = value * scale
    return f"{v:,.{digits}g}" if abs(v) < 10 ** digits else f"{v:,.0f}"


def fixed(value: float | None, decimals: int = 2, grouped: bool = True, signed: bool = False) -> str:
    """``value`` with ``decimals`` decimals, thousands grouped, a sign when ``signed``."""
    if value is None:
        return MISSING
    return f"{value:{'+' if signed else ''}{',' if grouped else ''}.{decimals}f}"


def millions(n: float | None, decimals: int = 2) -> str:
    return fixed(None if n is None else n / 1e6, decimals)


def billions(n: float | None, decimals: int = 3) -> str:
    return fixed(None if n is None else n / 1e9, decimals)


def ms(seconds: float | None, digits: int = 3, significant: bool = False) -> str:
    """Seconds as milliseconds: ``digits`` decimals, or ``digits`` significant digits."""
    if seconds is None:
        return MISSING
    return f"{seconds * 1e3:.{digits}g}" if significant else f"{1e3 * seconds:,.{digits}f}"


def pct(fraction: float | None, decimals: int = 2, sign: bool = True, signed: bool = False) -> str:
    """A fraction as a percentage; ``sign`` appends "%", ``signed`` shows + for gains."""
    if fraction is None:
        return MISSING
    return f"{100 * fraction:{'+' if signed else ''}.{decimals}f}{'%' if sign else ''}"


def share(part: float, whole: float) -> str:
    """``part`` as a percentage of ``whole`` (one decimal)."""
    return MISSING if not whole else f"{100.0 * part / whole:.1f}%"


def si(n: float | None, digits: int = 3) -> str:
    """A count with an SI prefix: 1234567 -> "1.23 M"."""
    if n is None:
        return MISSING
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.{digits}g} {unit}"
    return f"{n:.{digits}g}"


def times(x: float | None, digits: int = 3) -> str:
    """A ratio as "2.5x"."""
    return MISSING if x is None else f"{x:.{digits}g}x"


def ratio(value: float | None, first: float | None) -> str:
    """``value / first`` as "0.42x"; "-" when either is missing or ``first`` is 0."""
    return MISSING if value is None or not first else f"{value / first:.2f}x"


def energy(value: float | None, unit: str) -> str:
    """Joules as mJ; a normalised table's units are multiples of one ALU MAC."""
    if value is None:
        return MISSING
    return f"{value * 1e3:.4g} mJ" if unit == "J" else f"{value:.4g} MAC-units"


def size_text(size: Sequence[int]) -> str:
    """(3, 224, 224) -> "3x224x224"."""
    return "x".join(str(s) for s in size)

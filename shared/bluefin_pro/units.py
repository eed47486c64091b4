"""Bluefin Pro's numbers: decimal strings in e9 fixed point (1.5 -> "1500000000"); times in milliseconds."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

E9 = 10**9


def to_e9(value: float | Decimal | str) -> int:
    """The e9 integer of a decimal value (floats through their shortest repr: 0.1 -> 100000000)."""
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    return int((exact * E9).to_integral_value(ROUND_HALF_EVEN))


def from_e9(value: Any) -> float:
    """A float from an e9 decimal string or integer (int / int: correctly rounded)."""
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError(f"not an e9 number: {value!r}")
    return int(value) / E9


def from_e9_or(value: Any, default: float = 0.0) -> float:
    """``from_e9`` for optional fields: missing or empty gives ``default``."""
    return default if value in (None, "") else from_e9(value)

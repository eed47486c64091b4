"""Perpetual-futures funding: what a position pays or earns, per interval, per day and per year.

Convention (Bluefin, like most perpetual venues): a positive rate means longs pay shorts. The payment of
one interval is ``rate x notional``; Bluefin settles funding every hour (``FUNDING_INTERVAL_HOURS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.models import Side

FUNDING_INTERVAL_HOURS = 1.0
HOURS_PER_YEAR = 24 * 365


@dataclass(frozen=True)
class FundingRate:
    symbol: str
    rate: float  # per interval, as a fraction (0.0001 = 0.01 %)
    time: datetime
    predicted: float | None = None  # the rate expected at the next settlement, when the exchange says
    interval_hours: float = FUNDING_INTERVAL_HOURS
    open_interest: float | None = None  # in base units, when the exchange gives it

    @property
    def annualised(self) -> float:
        return self.rate * HOURS_PER_YEAR / self.interval_hours


def funding_payment(rate: float, notional: float, side: Side) -> float:
    """Cash flow of one settlement for the position (negative = the position pays)."""
    if notional < 0:
        raise ValueError("notional must be non-negative")
    return -side.sign * rate * notional


def funding_cost(rate: FundingRate, notional: float, side: Side) -> dict[str, float]:
    """What holding ``notional`` on ``side`` costs at this rate (positive = a cost): per interval, per day,
    per year, and per year as a fraction of the notional."""
    per_interval = -funding_payment(rate.rate, notional, side)
    per_day = per_interval * 24 / rate.interval_hours
    return {
        "per_interval": per_interval,
        "per_day": per_day,
        "per_year": per_day * 365,
        "annual_fraction": (per_day * 365 / notional) if notional else 0.0,
    }


def average_rate(history: list[FundingRate]) -> float | None:
    """Mean rate per interval over a history (None when empty)."""
    return sum(r.rate for r in history) / len(history) if history else None

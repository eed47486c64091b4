"""Expected funding of a new position over the decision's horizon, and reward/risk net of it.

A perpetual's position pays (or earns) ``rate x notional`` every funding interval (positive rate: longs pay
shorts; ``shared.marketdata.funding``). The gate expects the current rate (the venue's predicted next rate
when it gives one, else the latest; in a backtest the funding series' rate at the clock or --funding-rate)
to hold for FUNDING_HORIZON_HOURS, the holding time a decision is assumed to have (0: funding is left out):

    per unit = direction x rate x price x horizon_hours / interval_hours   (USD; positive = paid)

What a position is expected to pay makes the trade worse on both sides: the reward at the target is reduced
by it and the loss at the stop increased by it, so reward/risk = (|target - price| - f) / (stop distance + f)
and sizing keeps the loss at the stop, funding included, within RISK_PER_TRADE. An expected receipt is shown
but never counted: a rate can turn within the horizon, and the gate takes no risk on a forecast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExpectedFunding:
    rate: float  # per interval, as a fraction
    interval_hours: float
    horizon_hours: float
    price: float
    per_unit: float  # USD one unit pays over the horizon (negative: it is expected to earn it)

    @property
    def counted(self) -> float:
        """What the gate counts against the trade per unit: the expected payment, never a receipt."""
        return max(self.per_unit, 0.0)

    @property
    def bps(self) -> float:
        """The expected payment in basis points of the notional (negative: a receipt)."""
        return self.per_unit / self.price * 10_000 if self.price > 0 else 0.0

    def details(self, quantity: float) -> dict[str, Any]:
        return {
            "rate": self.rate, "interval_hours": self.interval_hours, "horizon_hours": self.horizon_hours,
            "per_unit_usd": round(self.per_unit, 9), "bps": round(self.bps, 6),
            "cost_usd": round(self.per_unit * quantity, 9), "counted_per_unit_usd": round(self.counted, 9),
        }  # fmt: skip


NO_FUNDING = ExpectedFunding(0.0, 1.0, 0.0, 0.0, 0.0)


def expected_funding(
    rate: float | None, interval_hours: float, horizon_hours: float, price: float, direction: int
) -> ExpectedFunding:
    """The funding one unit bought (``direction`` +1) or sold (-1) at ``price`` is expected to pay over
    ``horizon_hours`` at ``rate`` per ``interval_hours`` (no rate or no horizon: nothing)."""
    if rate is None or horizon_hours <= 0 or interval_hours <= 0 or price <= 0:
        return ExpectedFunding(rate or 0.0, interval_hours, max(horizon_hours, 0.0), price, 0.0)
    per_unit = direction * rate * price * horizon_hours / interval_hours
    return ExpectedFunding(rate, interval_hours, horizon_hours, price, per_unit)


def reward_risk(price: float, target: float, stop_distance: float, funding_per_unit: float = 0.0) -> float:
    """Reward at the target over the risk at the stop, the expected funding (>= 0) taken from the reward and
    added to the risk; below 0 when funding eats the whole reward."""
    cost = max(funding_per_unit, 0.0)
    return (abs(target - price) - cost) / (stop_distance + cost)

"""When an AI analyst reviews an open position: a timer per position and four events, each firing once.

- ``timer``: AI_REVIEW_MINUTES after the position opened, then after its latest review (0 = no timer);
- ``halfway``: a close half-way from the entry to the first target; re-armed by a close back at the entry;
- ``adverse_1r``: a close 1 R (the plan's initial risk per unit) against the entry; re-armed by a close back
  at the entry;
- ``funding_spike``: |funding rate| per interval above REVIEW_FUNDING_RATE; re-armed when it falls to half
  of it;
- ``regime_change``: the market's regime label (1h trend, else 15m: ``Engine.regime``) differs from the one
  last seen for the position (``unknown`` is no label).
A candle that fires several of them makes one review naming them all, and every review restarts the timer.
A new position (another entry order) starts with everything armed. Pure: the engine feeds it facts and
keeps its state across a restart (``saved`` / ``restore``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

UNKNOWN_REGIMES = ("", "unknown")


@dataclass(frozen=True)
class PositionFacts:
    """What the triggers need of a position's plan."""

    key: str  # the entry order it rests on: another key is another position
    sign: int  # 1 long, -1 short
    entry_price: float
    risk_per_unit: float  # R per unit (0: no adverse trigger)
    target: float | None  # the first take-profit (None: no half-way trigger)
    opened_at: datetime
    regime: str = ""  # at entry


@dataclass(frozen=True)
class MarketFacts:
    now: datetime  # the candle's close time
    close: float
    funding_rate: float | None = None
    regime: str = ""


@dataclass(frozen=True)
class Trigger:
    name: str
    detail: str


@dataclass
class _Armed:
    key: str
    last_review: datetime
    regime: str
    halfway: bool = True
    adverse: bool = True
    funding: bool = True


@dataclass(frozen=True)
class QuietBand:
    """What would fire a trigger on a coming candle (a backtest's fast-forward stops before it)."""

    up: float = math.inf  # a price at or above it
    down: float = -math.inf  # a price at or below it
    at: datetime | None = None  # a candle closing at or after it (the timer)


class ReviewTriggers:
    def __init__(self, minutes: float, funding_rate: float) -> None:
        self.minutes = minutes
        self.funding_rate = funding_rate
        self._armed: dict[str, _Armed] = {}

    def _state(self, symbol: str, position: PositionFacts) -> _Armed:
        state = self._armed.get(symbol)
        if state is None or state.key != position.key:
            regime = "" if position.regime in UNKNOWN_REGIMES else position.regime
            state = self._armed[symbol] = _Armed(position.key, position.opened_at, regime)
        return state

    def saved(self, symbol: str) -> dict[str, Any] | None:
        """The market's trigger state as JSON-ready values (kept across a restart), or None."""
        state = self._armed.get(symbol)
        if state is None:
            return None
        return {**asdict(state), "last_review": state.last_review.isoformat()}

    def restore(self, symbol: str, saved: dict[str, Any]) -> None:
        """Take back a state ``saved`` returned (another position's is replaced at its first candle)."""
        self._armed[symbol] = _Armed(**{**saved, "last_review": datetime.fromisoformat(saved["last_review"])})

    def forget(self, symbol: str) -> None:
        """The market is flat: its next position starts afresh."""
        self._armed.pop(symbol, None)

    def halfway_price(self, position: PositionFacts) -> float | None:
        target = position.target
        if target is None or (target - position.entry_price) * position.sign <= 0:
            return None
        return position.entry_price + (target - position.entry_price) / 2

    def adverse_price(self, position: PositionFacts) -> float | None:
        if position.risk_per_unit <= 0:
            return None
        return position.entry_price - position.sign * position.risk_per_unit

    def due(self, symbol: str, position: PositionFacts, market: MarketFacts) -> list[Trigger]:
        """The triggers this candle fires for the position (each disarmed until re-armed); [] for none.
        A non-empty answer counts as a review (the timer restarts)."""
        state = self._state(symbol, position)
        sign, entry, close = position.sign, position.entry_price, market.close
        fired: list[Trigger] = []
        gained = (close - entry) * sign
        halfway = self.halfway_price(position)
        if halfway is not None:
            if state.halfway and (close - halfway) * sign >= 0:
                state.halfway = False
                why = f"close {close:,.2f} is half-way to the target {position.target:,.2f}"
                fired.append(Trigger("halfway", why))
            elif not state.halfway and gained <= 0:
                state.halfway = True
        adverse = self.adverse_price(position)
        if adverse is not None:
            if state.adverse and (close - adverse) * sign <= 0:
                state.adverse = False
                risk = position.risk_per_unit
                why = f"close {close:,.2f} is 1 R ({risk:,.2f}) against the entry {entry:,.2f}"
                fired.append(Trigger("adverse_1r", why))
            elif not state.adverse and gained >= 0:
                state.adverse = True
        rate = market.funding_rate
        if self.funding_rate > 0 and rate is not None:
            if state.funding and abs(rate) > self.funding_rate:
                state.funding = False
                why = f"funding {rate:.5%} per interval, beyond {self.funding_rate:.5%}"
                fired.append(Trigger("funding_spike", why))
            elif not state.funding and abs(rate) <= self.funding_rate / 2:
                state.funding = True
        regime = market.regime
        if regime not in UNKNOWN_REGIMES:
            if state.regime and regime != state.regime:
                fired.append(Trigger("regime_change", f"regime {state.regime} -> {regime}"))
            state.regime = regime
        if self.minutes > 0 and market.now - state.last_review >= timedelta(minutes=self.minutes):
            fired.append(Trigger("timer", f"{self.minutes:g} min since the last review"))
        if fired:
            state.last_review = market.now
        return fired

    def quiet(self, symbol: str, position: PositionFacts) -> QuietBand:
        """The prices and time before which no trigger of the position fires (a regime change needs its
        timeframe's close, which the caller adds; a funding change, a funding event)."""
        state = self._state(symbol, position)
        entry, sign = position.entry_price, position.sign
        gains: list[float] = []  # a close reaching one of these prices (towards the profit side)
        losses: list[float] = []  # or one of these (towards the loss side) fires or re-arms a trigger
        halfway, adverse = self.halfway_price(position), self.adverse_price(position)
        if halfway is not None:
            (gains if state.halfway else losses).append(halfway if state.halfway else entry)
        if adverse is not None:
            (losses if state.adverse else gains).append(adverse if state.adverse else entry)
        if sign > 0:
            up, down = min(gains, default=math.inf), max(losses, default=-math.inf)
        else:
            up, down = min(losses, default=math.inf), max(gains, default=-math.inf)
        at = state.last_review + timedelta(minutes=self.minutes) if self.minutes > 0 else None
        return QuietBand(up, down, at)

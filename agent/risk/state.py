"""Trading states ACTIVE / REDUCING / HALTED, with the breakers that move between them (persisted).

- ACTIVE: anything risk approves.
- REDUCING: only orders that shrink exposure (closes, exits; an opposite entry only closes).
- HALTED: no new exposure at all.
Breakers, checked on every candle against the market clock with equity = balance + unrealised PnL:
- daily loss: equity down MAX_DAILY_LOSS from the UTC day's starting equity -> HALTED until the next UTC
  day; down REDUCE_AT of that -> REDUCING until the next UTC day;
- drawdown: equity down MAX_DRAWDOWN from its peak -> HALTED until the next UTC day (the peak is then
  re-based to the equity of that moment); down REDUCE_AT of that -> REDUCING.
The kill switch halts until a manual reset. A manual reset (or a manual state) starts counting afresh from
the current equity. Everything lives in the ``engine_state`` table, so a restart changes nothing.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from agent.journal.store import Store
from agent.risk.presets import RiskPolicy
from shared.logs import log_event

logger = logging.getLogger(__name__)
STATE_KEY = "trading_state"
State = Literal["ACTIVE", "REDUCING", "HALTED"]
STATES: tuple[State, ...] = ("ACTIVE", "REDUCING", "HALTED")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# The peak is kept exactly in memory and saved when it has risen 0.1 % since it was last saved (and with every
# other change): after a crash the drawdown breaker may count from a peak up to 0.1 % lower, never higher.
PEAK_SAVE_STEP = 0.001


@dataclass
class TradingStatus:
    state: State = "ACTIVE"
    reason: str = ""
    cause: str = ""  # daily_loss | drawdown | kill | manual | fatal | "" (ACTIVE)
    since: str | None = None
    until: str | None = None  # automatic release (next UTC day) or None (until a manual reset)
    day: str | None = None  # the UTC day of day_start_equity
    day_start_equity: float = 0.0
    peak_equity: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def next_utc_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


class TradingGuard:
    """Owns the trading state; thread-safe (the API's kill switch and the engine loop both use it)."""

    def __init__(self, store: Store, policy: RiskPolicy) -> None:
        self._store = store
        self.policy = policy
        self._lock = threading.RLock()
        with store.transaction() as records:
            stored = records.state(STATE_KEY)
        self.status = TradingStatus(**stored) if isinstance(stored, dict) else TradingStatus()
        day = self.status.day
        self._day_ends = next_utc_day(datetime.fromisoformat(day).replace(tzinfo=UTC)) if day else EARLIEST
        self._until_cache: tuple[str | None, datetime] = (None, EARLIEST)
        self._saved_peak = self.status.peak_equity

    def _until(self) -> datetime:
        if self._until_cache[0] != self.status.until:
            assert self.status.until is not None
            self._until_cache = (self.status.until, datetime.fromisoformat(self.status.until))
        return self._until_cache[1]

    @property
    def state(self) -> State:
        return self.status.state

    def _save(self) -> None:
        self._saved_peak = self.status.peak_equity
        with self._store.transaction() as records:
            records.set_state(STATE_KEY, self.status.as_dict())

    def _move(self, state: State, cause: str, reason: str, now: datetime, until: datetime | None) -> bool:
        if self.status.state == state and self.status.cause == cause:
            return False
        self.status.state, self.status.cause, self.status.reason = state, cause, reason
        self.status.since = now.isoformat()
        self.status.until = until.isoformat() if until else None
        log_event(
            logger, "trading_state", logging.WARNING if state != "ACTIVE" else logging.INFO,
            state=state, cause=cause, reason=reason, until=self.status.until, alert=state == "HALTED",
        )  # fmt: skip
        return True

    def update(self, now: datetime, equity: float) -> bool:
        """Fold the equity at ``now`` (market clock): day roll, automatic release, breakers. True when the
        state changed."""
        with self._lock:
            status, changed, dirty = self.status, False, False
            if now >= self._day_ends:
                status.day, status.day_start_equity, dirty = now.date().isoformat(), equity, True
                self._day_ends = next_utc_day(now)
            if status.until is not None and now >= self._until():
                if status.cause == "drawdown":
                    status.peak_equity = equity
                changed = self._move("ACTIVE", "", "", now, None)
            if equity > status.peak_equity:
                status.peak_equity = equity
                dirty = dirty or equity > self._saved_peak * (1 + PEAK_SAVE_STEP)
            changed = self._check_breakers(now, equity) or changed
            if changed or dirty:
                self._save()
            return changed

    def _check_breakers(self, now: datetime, equity: float) -> bool:
        status, policy = self.status, self.policy
        if status.state == "HALTED":
            return False
        daily = equity / status.day_start_equity - 1 if status.day_start_equity > 0 else 0.0
        drawdown = equity / status.peak_equity - 1 if status.peak_equity > 0 else 0.0
        if (
            daily > -policy.max_daily_loss * policy.reduce_at
            and drawdown > -policy.max_drawdown * policy.reduce_at
        ):
            return False  # the usual case, decided without building any message
        release = next_utc_day(now)
        if daily <= -policy.max_daily_loss:
            reason = f"daily loss {daily:.2%} reached MAX_DAILY_LOSS {policy.max_daily_loss:.2%}"
            return self._move("HALTED", "daily_loss", reason, now, release)
        if drawdown <= -policy.max_drawdown:
            reason = f"drawdown {drawdown:.2%} reached MAX_DRAWDOWN {policy.max_drawdown:.2%}"
            return self._move("HALTED", "drawdown", reason, now, release)
        if status.state == "ACTIVE" and daily <= -policy.max_daily_loss * policy.reduce_at:
            reason = f"daily loss {daily:.2%} past {policy.reduce_at:.0%} of MAX_DAILY_LOSS"
            return self._move("REDUCING", "daily_loss", reason, now, release)
        if status.state == "ACTIVE" and drawdown <= -policy.max_drawdown * policy.reduce_at:
            reason = f"drawdown {drawdown:.2%} past {policy.reduce_at:.0%} of MAX_DRAWDOWN"
            return self._move("REDUCING", "drawdown", reason, now, release)
        return False

    # --- quiet candles (backtests) --------------------------------------------------------------------------
    def next_event(self) -> datetime:
        """The next time the state may change without a move of equity: a new UTC day or a release."""
        return min(self._day_ends, self._until()) if self.status.until is not None else self._day_ends

    def first_breach(self, equities: np.ndarray) -> int | None:
        """The first of these equities (one per candle, the same day) at which a breaker would act."""
        status, policy = self.status, self.policy
        if status.state == "HALTED" or not len(equities):
            return None
        share = policy.reduce_at if status.state == "ACTIVE" else 1.0
        peaks = np.maximum.accumulate(np.maximum(equities, status.peak_equity))
        breach = np.zeros(len(equities), dtype=bool)
        if status.day_start_equity > 0:
            breach |= equities / status.day_start_equity - 1 <= -policy.max_daily_loss * share
        positive = peaks > 0
        breach[positive] |= equities[positive] / peaks[positive] - 1 <= -policy.max_drawdown * share
        hits = np.flatnonzero(breach)
        return int(hits[0]) if len(hits) else None

    def absorb(self, equities: np.ndarray) -> None:
        """Quiet candles went by without a breach: only the peak may have risen."""
        with self._lock:
            highest = float(equities.max()) if len(equities) else -math.inf
            if highest > self.status.peak_equity:
                self.status.peak_equity = highest
                if highest > self._saved_peak * (1 + PEAK_SAVE_STEP):
                    self._save()

    def kill(self, now: datetime, reason: str) -> None:
        self.halt(now, "kill", reason or "kill switch")

    def halt(self, now: datetime, cause: str, reason: str) -> None:
        """HALTED for ``cause`` (``kill``: the kill switch; ``fatal``: an error the engine cannot trade past),
        persisted and held until a human resets it."""
        with self._lock:
            self._move("HALTED", cause, reason, now, None)
            self._save()

    def set_manual(self, state: State, now: datetime, equity: float, reason: str = "") -> None:
        """A human sets the state (a reset is ``ACTIVE``): the breakers count afresh from this equity."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        with self._lock:
            self.status.day, self.status.day_start_equity = now.date().isoformat(), equity
            self._day_ends = next_utc_day(now)
            self.status.peak_equity = equity
            self._move(
                state, "manual" if state != "ACTIVE" else "", reason or f"set to {state} by hand", now, None
            )
            if state == "ACTIVE":
                self.status.reason = ""
            self._save()

    def view(self, equity: float | None = None) -> dict[str, Any]:
        status = self.status
        view = status.as_dict()
        if equity is not None:
            view["daily_pnl"] = equity - status.day_start_equity if status.day_start_equity else 0.0
            view["daily_return"] = (
                equity / status.day_start_equity - 1 if status.day_start_equity > 0 else 0.0
            )
            view["drawdown"] = equity / status.peak_equity - 1 if status.peak_equity > 0 else 0.0
        return view

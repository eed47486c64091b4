"""Signals the engine stores itself, beside TradingView's: the platform's own analysis and replayed alerts.

- ``InternalSignals`` (INTERNAL_SIGNALS): on each closed candle of one timeframe, ``ema_cross`` signals buy
  when EMA20 crosses above EMA50 and sell when it crosses below; ``sma_cross`` does the same with SMA20 and
  SMA50. Source ``internal:<strategy>``. On a replay's ``PreparedMarketState`` the crosses of the whole
  replay are found at once (``signal_rows``, the same rule), so a backtest's fast-forward only has to stop
  at the candle of the next cross rather than at every close of the timeframe.
- ``ReplayedSignals`` (SIGNALS_REPLAY_FILE, ``bluefinai backtest --signals``): historical alerts from a CSV
  or JSON file, each stored when the market clock reaches its time, so a paper run and a backtest see them
  at the same candle. Columns: ``time`` (ISO or epoch seconds/ms), ``symbol``, ``action`` (buy, sell, long,
  short, close, exit); optional ``id``, ``price``, ``stop_loss``, ``take_profit``, ``confidence``,
  ``strategy``, ``source`` (default ``tradingview:<strategy>``, ``tradingview`` without a strategy), and
  TradingView's ``market_position`` / ``prev_market_position`` (long, short, flat), which decide open,
  close, reverse, add or reduce as for a webhook alert (``shared.alert_fields.position_intent``); every
  other column is kept with the signal, as the webhook keeps an alert's extra fields.
Every signal has an idempotency key, so a restart never stores one twice.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agent.engine.positions import MarketView
from agent.journal.store import Conflict, Store
from shared.alert_fields import (
    ACTIONS,
    POSITIONS,
    SOURCE_LENGTH,
    STANDARD_FIELDS,
    parse_action,
    parse_position,
    parse_time,
    position_intent,
    source_name,
)
from shared.db import SignalRow
from shared.errors import FieldProblem, InvalidInput
from shared.marketdata.prepared import PreparedMarketState
from shared.marketdata.snapshot import MarketState
from shared.models import Signal
from shared.symbols import UnknownSymbol, normalise_symbol

STRATEGY_LINES = {"ema_cross": ("ema_20", "ema_50"), "sma_cross": ("sma_20", "sma_50")}


class SignalSource(ABC):
    @abstractmethod
    def on_candle(self, symbol: str, view: MarketView, market: MarketState) -> bool:
        """Store the signals due at this candle; True if any was stored."""

    @abstractmethod
    def quiet(self, symbol: str, market: MarketState) -> tuple[frozenset[str], datetime | None]:
        """When this source may act next on ``symbol`` (whose state is ``market``): on a candle closing one
        of these timeframes, or on the candle closing at that time (None: no time)."""


def store_signal(store: Store, **values: Any) -> bool:
    """Insert one signal; False if its idempotency key is already stored."""
    try:
        with store.transaction() as records:
            records.add_signal(SignalRow(**{"raw": {}, **values}))
    except Conflict:
        return False
    return True


def signal_rows(spread: np.ndarray, closing_minutes: np.ndarray, first_row: int) -> np.ndarray:
    """The rows of a timeframe at whose close ``InternalSignals.on_candle`` signals, ascending, all at once.

    ``spread`` is fast - slow of every row and ``closing_minutes`` the minute that closes each. The rule is
    the incremental one: on_candle sees the last row each minute closes (several may close at one minute,
    across a gap) and signals when the spread's sign differs from the one it saw before, neither NaN and
    this one not 0 (a 0 signals nothing but is the next "before"). A source first called when ``first_row``
    rows were closed has nothing before the first row it sees.
    """
    seen = np.flatnonzero(np.r_[closing_minutes[1:] != closing_minutes[:-1], True])
    seen = seen[seen >= first_row]
    before, now = spread[seen[:-1]], spread[seen[1:]]
    crosses = ~np.isnan(before) & ~np.isnan(now) & (now != 0) & ((before > 0) != (now > 0))
    return np.asarray(seen[1:][crosses])


@dataclass(frozen=True)
class _Schedule:
    """Where one source signals over one prepared market state's whole replay."""

    market: PreparedMarketState
    timeframe: str
    spread: np.ndarray  # fast - slow of every row
    rows: np.ndarray  # signal_rows

    def next_row(self, row: int) -> int | None:
        """The first row at or after ``row`` that signals (None: none before the end of the data)."""
        at = int(np.searchsorted(self.rows, row))
        return int(self.rows[at]) if at < len(self.rows) else None

    def cross_at_close(self) -> float | None:
        """The spread if the row that just closed signals, else None."""
        row = self.market.rows_closed(self.timeframe) - 1
        return float(self.spread[row]) if self.next_row(row) == row else None


class InternalSignals(SignalSource):
    def __init__(self, store: Store, strategy: str, timeframe: str) -> None:
        if strategy not in STRATEGY_LINES:
            raise ValueError(f"INTERNAL_SIGNALS must be one of {', '.join(STRATEGY_LINES)}")
        self._store = store
        self.strategy = strategy
        self.timeframe = timeframe
        self._fast, self._slow = STRATEGY_LINES[strategy]
        self._previous: dict[str, float] = {}  # symbol -> fast - slow at the previous closed candle
        self._schedules: dict[str, _Schedule] = {}  # symbol -> its prepared state's crosses

    def _schedule(self, symbol: str, market: MarketState, view: MarketView | None) -> _Schedule | None:
        """The crosses of ``market`` when it is prepared (None otherwise, or before the first on_candle).
        Computed at this source's first candle of that market object (``view`` given): a replay that starts
        over gets a new state object, and the source starts over with it."""
        if not isinstance(market, PreparedMarketState):
            return None
        schedule = self._schedules.get(symbol)
        if schedule is not None and schedule.market is market:
            return schedule
        if view is None:
            return None
        timeframe = self.timeframe
        closed = market.rows_closed(timeframe)
        first_row = closed - 1 if timeframe in view.closed else closed  # the rows closed before this minute
        spread = market.indicator_rows(timeframe, self._fast) - market.indicator_rows(timeframe, self._slow)
        rows = signal_rows(spread, market.closing_minutes(timeframe), first_row)
        self._schedules[symbol] = schedule = _Schedule(market, timeframe, spread, rows)
        return schedule

    def quiet(self, symbol: str, market: MarketState) -> tuple[frozenset[str], datetime | None]:
        """On a prepared state: the close time of the next cross (nothing to watch until then); otherwise
        every close of the timeframe, since the cross is only known there."""
        schedule = self._schedule(symbol, market, None)
        if schedule is None:
            return frozenset({self.timeframe}), None
        row = schedule.next_row(schedule.market.rows_closed(self.timeframe))
        return frozenset(), None if row is None else schedule.market.close_time_of_row(self.timeframe, row)

    def _incremental_cross(self, symbol: str, market: MarketState) -> float | None:
        """The spread if it crossed since the previous close this source saw, else None (a plain state)."""
        spread = market.indicator(self.timeframe, self._fast) - market.indicator(self.timeframe, self._slow)
        previous = self._previous.get(symbol, math.nan)
        self._previous[symbol] = spread
        if math.isnan(spread) or math.isnan(previous) or (previous > 0) == (spread > 0) or spread == 0:
            return None
        return spread

    def on_candle(self, symbol: str, view: MarketView, market: MarketState) -> bool:
        schedule = self._schedule(symbol, market, view)
        candle = view.closed.get(self.timeframe)
        if candle is None:
            return False
        # a prepared state decides from its arrays: a fast-forward skips the closes in between
        spread = self._incremental_cross(symbol, market) if schedule is None else schedule.cross_at_close()
        if spread is None:
            return False
        action = "buy" if spread > 0 else "sell"
        key = f"internal:{self.strategy}:{symbol}:{self.timeframe}:{candle.open_time.isoformat()}"
        return store_signal(
            self._store, idempotency_key=key,
            source=f"internal:{self.strategy}", symbol=symbol, action=action, price=candle.close,
            timeframe=self.timeframe, strategy=f"{self._fast}/{self._slow} cross", alert_time=view.now,
        )  # fmt: skip


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return float(value)


def _blank(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _position(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if _blank(value):
        return None
    position = parse_position(value)
    if position is None:
        raise ValueError(f"{name} {value!r} is not {', '.join(POSITIONS)}")
    return position


def read_alerts(path: Path) -> list[Signal]:
    """Alerts from a CSV or JSON (a list of objects) file as signals, sorted by their ``alert_time``;
    InvalidInput names each bad row."""
    if path.suffix.lower() == ".json":
        records = json.loads(path.read_text())
        if not isinstance(records, list):
            raise InvalidInput([FieldProblem(str(path), "a JSON alerts file must hold a list of objects")])
    else:
        records = pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
    alerts, problems = [], []
    for number, record in enumerate(records, start=1):
        try:
            if not isinstance(record, dict):
                raise ValueError("not an object")
            action = parse_action(record.get("action"))
            if action is None:
                raise ValueError(f"action {record.get('action')!r} is not {', '.join(ACTIONS)}")
            time = parse_time(record["time"])
            if time is None:
                raise ValueError(
                    f"time {record['time']!r} is neither ISO 8601 nor epoch seconds/milliseconds"
                )
            positions = [_position(record, name) for name in ("market_position", "prev_market_position")]
            action, _ = position_intent(action, positions[0], positions[1])
            strategy = str(record.get("strategy") or "").strip() or None
            source = str(record.get("source") or source_name("tradingview", strategy))
            if len(source) > SOURCE_LENGTH:
                raise ValueError(f"source must be at most {SOURCE_LENGTH} characters")
            raw = {str(k): v for k, v in record.items() if k not in STANDARD_FIELDS and not _blank(v)}
            raw["action"] = record.get("action")  # what the alert said, as a webhook alert's raw keeps it
            alerts.append(
                Signal(
                    idempotency_key=str(record.get("id") or f"replay:{number}:{time.isoformat()}"),
                    source=source, symbol=normalise_symbol(str(record["symbol"])), action=action,
                    price=_number(record.get("price")), strategy=strategy,
                    confidence=_number(record.get("confidence")), stop_loss=_number(record.get("stop_loss")),
                    take_profit=_number(record.get("take_profit")), alert_time=time, raw=raw,
                )
            )  # fmt: skip
        except (KeyError, ValueError, TypeError, UnknownSymbol) as exc:
            problems.append(FieldProblem(f"{path.name} row {number}", str(exc)))
    if problems:
        raise InvalidInput(problems)
    return sorted(alerts, key=_alert_time)


def _alert_time(signal: Signal) -> datetime:
    assert signal.alert_time is not None  # read_alerts gives every alert its time
    return signal.alert_time


class ReplayedSignals(SignalSource):
    def __init__(self, store: Store, alerts: list[Signal]) -> None:
        self._store = store
        self._alerts = alerts  # each with its alert_time, in time order (read_alerts)
        self._next = 0

    def quiet(self, symbol: str, market: MarketState) -> tuple[frozenset[str], datetime | None]:
        return frozenset(), _alert_time(self._alerts[self._next]) if self._next < len(self._alerts) else None

    def on_candle(self, symbol: str, view: MarketView, market: MarketState) -> bool:
        stored = False
        while self._next < len(self._alerts) and _alert_time(self._alerts[self._next]) <= view.now:
            alert = self._alerts[self._next]
            self._next += 1
            stored = store_signal(
                self._store, idempotency_key=alert.idempotency_key, source=alert.source, symbol=alert.symbol,
                action=alert.action.value, price=alert.price, stop_loss=alert.stop_loss,
                take_profit=alert.take_profit, confidence=alert.confidence, strategy=alert.strategy,
                alert_time=alert.alert_time, raw=dict(alert.raw),
            ) or stored  # fmt: skip
        return stored

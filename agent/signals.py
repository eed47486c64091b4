"""Signals the engine stores itself, beside TradingView's: the platform's own analysis and replayed alerts.

- ``InternalSignals`` (INTERNAL_SIGNALS): on each closed candle of one timeframe, ``ema_cross`` signals buy
  when EMA20 crosses above EMA50 and sell when it crosses below; ``sma_cross`` does the same with SMA20 and
  SMA50. Source ``internal:<strategy>``.
- ``ReplayedSignals`` (SIGNALS_REPLAY_FILE, ``bluefinai backtest --signals``): historical alerts from a CSV
  or JSON file, each stored when the market clock reaches its time, so a paper run and a backtest see them
  at the same candle. Columns: ``time`` (ISO or epoch seconds/ms), ``symbol``, ``action`` (buy, sell, long,
  short, close, exit); optional ``id``, ``price``, ``stop_loss``, ``take_profit``, ``confidence``,
  ``strategy``, ``source`` (default ``tradingview``).
Every signal has an idempotency key, so a restart never stores one twice.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.exc import IntegrityError

from agent.positions import MarketView
from shared.db import Database, SignalRow
from shared.errors import FieldProblem, InvalidInput
from shared.marketdata.snapshot import MarketState
from shared.symbols import UnknownSymbol, normalise_symbol

STRATEGY_LINES = {"ema_cross": ("ema_20", "ema_50"), "sma_cross": ("sma_20", "sma_50")}
ACTIONS = {"buy": "buy", "long": "buy", "sell": "sell", "short": "sell", "close": "close", "exit": "close"}


class SignalSource(ABC):
    @abstractmethod
    def on_candle(self, symbol: str, view: MarketView, market: MarketState) -> bool:
        """Store the signals due at this candle; True if any was stored."""

    @abstractmethod
    def quiet(self) -> tuple[frozenset[str], datetime | None]:
        """When this source may act next: on a candle closing one of these timeframes, or at that time."""


def store_signal(db: Database, **values: Any) -> bool:
    """Insert one signal; False if its idempotency key is already stored."""
    try:
        with db.session() as session:
            session.add(SignalRow(raw={}, **values))
    except IntegrityError:
        return False
    return True


class InternalSignals(SignalSource):
    def __init__(self, db: Database, strategy: str, timeframe: str) -> None:
        if strategy not in STRATEGY_LINES:
            raise ValueError(f"INTERNAL_SIGNALS must be one of {', '.join(STRATEGY_LINES)}")
        self._db = db
        self.strategy = strategy
        self.timeframe = timeframe
        self._fast, self._slow = STRATEGY_LINES[strategy]
        self._previous: dict[str, float] = {}  # symbol -> fast - slow at the previous closed candle

    def quiet(self) -> tuple[frozenset[str], datetime | None]:
        return frozenset({self.timeframe}), None

    def on_candle(self, symbol: str, view: MarketView, market: MarketState) -> bool:
        candle = view.closed.get(self.timeframe)
        if candle is None:
            return False
        spread = market.indicator(self.timeframe, self._fast) - market.indicator(self.timeframe, self._slow)
        previous = self._previous.get(symbol, math.nan)
        self._previous[symbol] = spread
        if math.isnan(spread) or math.isnan(previous) or (previous > 0) == (spread > 0) or spread == 0:
            return False
        action = "buy" if spread > 0 else "sell"
        key = f"internal:{self.strategy}:{symbol}:{self.timeframe}:{candle.open_time.isoformat()}"
        return store_signal(
            self._db, idempotency_key=key,
            source=f"internal:{self.strategy}", symbol=symbol, action=action, price=candle.close,
            timeframe=self.timeframe, strategy=f"{self._fast}/{self._slow} cross", alert_time=view.now,
        )  # fmt: skip


@dataclass(frozen=True)
class ReplayedAlert:
    key: str
    time: datetime
    symbol: str
    action: str
    source: str
    price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    confidence: float | None = None
    strategy: str | None = None


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return float(value)


def _time(value: Any) -> datetime:
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        number = float(value)
        stamp = pd.Timestamp(number, unit="ms" if number > 1e11 else "s", tz=UTC)
    else:
        stamp = pd.Timestamp(str(value))
        stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.to_pydatetime()


def read_alerts(path: Path) -> list[ReplayedAlert]:
    """Alerts from a CSV or JSON (a list of objects) file, sorted by time; InvalidInput names each bad row."""
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
            action = ACTIONS.get(str(record.get("action", "")).strip().lower())
            if action is None:
                raise ValueError(
                    f"action {record.get('action')!r} is not buy, sell, long, short, close or exit"
                )
            time = _time(record["time"])
            alerts.append(
                ReplayedAlert(
                    key=str(record.get("id") or f"replay:{number}:{time.isoformat()}"), time=time,
                    symbol=normalise_symbol(str(record["symbol"])), action=action,
                    source=str(record.get("source") or "tradingview"), price=_number(record.get("price")),
                    stop_loss=_number(record.get("stop_loss")),
                    take_profit=_number(record.get("take_profit")),
                    confidence=_number(record.get("confidence")), strategy=record.get("strategy") or None,
                )
            )  # fmt: skip
        except (KeyError, ValueError, TypeError, UnknownSymbol) as exc:
            problems.append(FieldProblem(f"{path.name} row {number}", str(exc)))
    if problems:
        raise InvalidInput(problems)
    return sorted(alerts, key=lambda a: a.time)


class ReplayedSignals(SignalSource):
    def __init__(self, db: Database, alerts: list[ReplayedAlert]) -> None:
        self._db = db
        self._alerts = alerts
        self._next = 0

    def quiet(self) -> tuple[frozenset[str], datetime | None]:
        return frozenset(), self._alerts[self._next].time if self._next < len(self._alerts) else None

    def on_candle(self, symbol: str, view: MarketView, market: MarketState) -> bool:
        stored = False
        while self._next < len(self._alerts) and self._alerts[self._next].time <= view.now:
            alert = self._alerts[self._next]
            self._next += 1
            stored = store_signal(
                self._db, idempotency_key=alert.key, source=alert.source, symbol=alert.symbol,
                action=alert.action, price=alert.price, stop_loss=alert.stop_loss,
                take_profit=alert.take_profit, confidence=alert.confidence, strategy=alert.strategy,
                alert_time=alert.time,
            ) or stored  # fmt: skip
        return stored

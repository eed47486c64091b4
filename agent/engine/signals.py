"""Signals the engine stores itself, beside TradingView's: the platform's own analysis and replayed alerts.

- INTERNAL_SIGNALS (``ema_cross``, ``sma_cross``) are the built-in strategies of those names run by
  ``agent.strategies.source.StrategySignals`` on INTERNAL_SIGNAL_TIMEFRAME, source ``internal:<name>``
  (``agent.wiring.build_signal_sources``).
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
from datetime import datetime
from pathlib import Path
from typing import Any

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
from shared.marketdata.snapshot import MarketState
from shared.models import Signal
from shared.symbols import UnknownSymbol, normalise_symbol


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

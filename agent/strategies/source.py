"""``StrategySignals``: one strategy (``agent.strategies.api``) as a signal source of the engine.

Live (a plain ``MarketState``): on each closed candle of the strategy's timeframe, the last ``warmup``
closed candles (with the platform's indicators as they were on each) are one frame; the signals of its last
row are stored. On a backtest's ``PreparedMarketState`` the strategy is evaluated once over every candle of
the replay (vectorised), so ``quiet`` names the close of the next candle that signals and a fast-forward
skips everything in between. The rows are those live would see: the last candle each minute closes (two
close at once across a gap), from the first close after the source started, once ``warmup`` candles closed.

A candle's flags become one signal: ``entry_long`` buy, ``entry_short`` sell, otherwise ``exit_long`` /
``exit_short`` close (``raw.exit`` says which side), with its stop, target and confidence; source
``strategy:<name>``, so it goes through the analyst and risk like any other and is scored per source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from agent.engine import signals as engine_signals
from agent.engine.positions import MarketView
from agent.engine.signals import SignalSource
from agent.journal.store import Store
from agent.strategies.api import FLAGS, Strategy
from shared.indicators import INDICATOR_COLUMNS
from shared.marketdata.prepared import PreparedMarketState
from shared.marketdata.snapshot import MarketState

OHLCV = ["open", "high", "low", "close", "volume"]


def window_frame(market: MarketState, timeframe: str, count: int) -> pd.DataFrame:
    """The last ``count`` closed candles of ``timeframe`` with their indicators, as a strategy reads them."""
    recent = market.recent(timeframe, count)
    columns: dict[str, Any] = {
        "open": [c.open for c, _ in recent], "high": [c.high for c, _ in recent],
        "low": [c.low for c, _ in recent], "close": [c.close for c, _ in recent],
        "volume": [c.volume for c, _ in recent],
    }  # fmt: skip
    for column in INDICATOR_COLUMNS:
        columns[column] = [values.get(column, math.nan) for _, values in recent]
    # one frame from all its columns at once: adding 30 columns one by one cost 4 ms a candle
    index = pd.DatetimeIndex([c.open_time for c, _ in recent], name="time")
    return pd.DataFrame(columns, index=index, dtype=float)


def history_frame(market: PreparedMarketState, timeframe: str) -> pd.DataFrame:
    """Every candle of ``timeframe`` in a prepared replay (closed or ahead) with its indicators."""
    open_times, ohlcv = market.candle_rows(timeframe)
    rows = np.array(ohlcv, dtype=float).reshape(-1, len(OHLCV))
    columns: dict[str, Any] = {name: rows[:, at] for at, name in enumerate(OHLCV)}
    for column in INDICATOR_COLUMNS:
        columns[column] = np.array(market.indicator_rows(timeframe, column), dtype=float)
    index = pd.DatetimeIndex(pd.to_datetime(open_times, unit="s", utc=True), name="time")
    return pd.DataFrame(columns, index=index)


def candle_frame_of(candles: pd.DataFrame) -> pd.DataFrame:
    """A frame as strategies read it from a candle table (``timestamp open high low close volume``):
    the platform's indicators added, indexed by open time."""
    from shared.indicators import compute

    frame = compute(candles[OHLCV].astype(float).reset_index(drop=True))
    frame.index = pd.DatetimeIndex(pd.to_datetime(candles["timestamp"], utc=True), name="time")
    return frame


def seen_rows(closing_minutes: np.ndarray, first_row: int, warmup: int) -> np.ndarray:
    """The rows a live source evaluates: the last row each minute closes, from ``first_row`` on, once
    ``warmup`` rows are closed."""
    seen = np.flatnonzero(np.r_[closing_minutes[1:] != closing_minutes[:-1], True])
    return seen[(seen >= first_row) & (seen >= warmup - 1)]


@dataclass(frozen=True)
class _Plan:
    """Where one strategy signals over one prepared market state's whole replay."""

    market: PreparedMarketState
    rows: np.ndarray  # the rows that signal, ascending
    table: pd.DataFrame  # the checked signals of every row

    def next_row(self, row: int) -> int | None:
        at = int(np.searchsorted(self.rows, row))
        return int(self.rows[at]) if at < len(self.rows) else None


class StrategySignals(SignalSource):
    """``strategy`` as a source, on its own timeframe and source name unless given (INTERNAL_SIGNALS runs a
    built-in cross on INTERNAL_SIGNAL_TIMEFRAME as ``internal:<name>``)."""

    def __init__(
        self, store: Store, strategy: Strategy, timeframe: str | None = None, source: str | None = None
    ) -> None:
        self._store = store
        self.strategy = strategy
        self.timeframe = timeframe or strategy.timeframe
        self.source = source or strategy.source
        self._plans: dict[str, _Plan] = {}

    def _plan(self, symbol: str, market: MarketState, view: MarketView | None) -> _Plan | None:
        if not isinstance(market, PreparedMarketState):
            return None
        plan = self._plans.get(symbol)
        if plan is not None and plan.market is market:
            return plan
        if view is None:
            return None
        timeframe = self.timeframe
        closed = market.rows_closed(timeframe)
        first_row = closed - 1 if timeframe in view.closed else closed
        table = self.strategy.evaluate(history_frame(market, timeframe))
        flagged = table[list(FLAGS)].to_numpy().any(axis=1)
        rows = seen_rows(np.array(market.closing_minutes(timeframe)), first_row, self.strategy.warmup)
        self._plans[symbol] = plan = _Plan(market, rows[flagged[rows]], table)
        return plan

    def quiet(self, symbol: str, market: MarketState) -> tuple[frozenset[str], datetime | None]:
        plan = self._plan(symbol, market, None)
        if plan is None:
            return frozenset({self.timeframe}), None
        row = plan.next_row(plan.market.rows_closed(self.timeframe))
        return frozenset(), None if row is None else plan.market.close_time_of_row(self.timeframe, row)

    def _signal_now(self, symbol: str, market: MarketState, view: MarketView) -> pd.Series | None:
        plan = self._plan(symbol, market, view)
        if plan is not None:
            row = plan.market.rows_closed(self.timeframe) - 1
            return plan.table.iloc[row] if plan.next_row(row) == row else None
        frame = window_frame(market, self.timeframe, self.strategy.warmup)
        if len(frame) < self.strategy.warmup:
            return None
        last = self.strategy.evaluate(frame).iloc[-1]
        return last if bool(last[list(FLAGS)].any()) else None

    def on_candle(self, symbol: str, view: MarketView, market: MarketState) -> bool:
        if self.timeframe not in view.closed:
            self._plan(symbol, market, view)  # a prepared replay is planned from the first candle seen
            return False
        candle = view.closed[self.timeframe]
        signal = self._signal_now(symbol, market, view)
        if signal is None:
            return False
        values = signal_values(self.strategy, symbol, candle, view, signal, self.source, self.timeframe)
        return engine_signals.store_signal(self._store, **values)


def _number(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def action_of(signal: pd.Series) -> tuple[str, dict[str, Any]]:
    """The action one candle's flags stand for, and the flags kept with the signal."""
    flags = {name: True for name in FLAGS if bool(signal[name])}
    if signal["entry_long"]:
        return "buy", flags
    if signal["entry_short"]:
        return "sell", flags
    side = "long" if signal["exit_long"] and not signal["exit_short"] else "short"
    if signal["exit_long"] and signal["exit_short"]:
        side = "any"
    return "close", {**flags, "exit": side}


def signal_values(
    strategy: Strategy, symbol: str, candle: Any, view: MarketView, signal: pd.Series, source: str,
    timeframe: str,
) -> dict[str, Any]:  # fmt: skip
    action, raw = action_of(signal)
    entry = action != "close"
    return {
        "idempotency_key": f"{source}:{symbol}:{timeframe}:{candle.open_time.isoformat()}",
        "source": source, "symbol": symbol, "action": action, "price": candle.close,
        "timeframe": timeframe, "strategy": strategy.name, "alert_time": view.now,
        "stop_loss": _number(signal["stop_loss"]) if entry else None,
        "take_profit": _number(signal["take_profit"]) if entry else None,
        "confidence": _number(signal["confidence"]), "raw": {**raw, "params": dict(strategy.p)},
    }  # fmt: skip

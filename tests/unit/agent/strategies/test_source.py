"""A strategy decides alike live (each closed candle, on its last ``warmup`` candles) and in a backtest
(once over the prepared replay): the same signals on the real month; and ema_cross / sma_cross on the API
signal where INTERNAL_SIGNALS does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from agent.engine.positions import MarketView
from agent.journal.store import DatabaseStore
from agent.strategies.builtin import BUILT_IN
from agent.strategies.source import StrategySignals
from agent.wiring import build_signal_sources
from shared.config import DEFAULT_REPLAY_FILE, load_settings
from shared.db import Database
from shared.marketdata.prepared import PreparedMarketState
from shared.marketdata.snapshot import MarketState
from shared.models import Candle

SYMBOL = "BTC-PERP"
DAYS = 4  # of the real month: ~380 15m candles, enough for every built-in to signal often


@pytest.fixture(scope="module")
def month() -> pd.DataFrame:
    frame = pd.read_csv(DEFAULT_REPLAY_FILE, parse_dates=["timestamp"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame[frame["timestamp"] < frame["timestamp"].iloc[0] + pd.Timedelta(days=DAYS)].reset_index(
        drop=True
    )


def run(
    market: MarketState, frame: pd.DataFrame, sources: list[Any], monkeypatch: pytest.MonkeyPatch
) -> list[tuple[Any, ...]]:
    stored: list[tuple[Any, ...]] = []

    def record(store: Any, **values: Any) -> bool:
        stop = values.get("stop_loss")  # from ATR: the live and prepared ATRs differ in the last bits
        stored.append((values["source"], values["alert_time"], values["action"], stop and round(stop, 6)))
        return True

    monkeypatch.setattr("agent.engine.signals.store_signal", record)
    for row in frame.itertuples():
        candle = Candle(
            SYMBOL, row.timestamp.to_pydatetime(), row.open, row.high, row.low, row.close, row.volume
        )
        closed = {built.candle.timeframe: built.candle for built in market.add_candle(candle)}
        view = MarketView(candle.open_time + timedelta(minutes=1), candle, closed)
        for source in sources:
            source.on_candle(SYMBOL, view, market)
    return stored


def strategy_sources() -> list[StrategySignals]:
    store = DatabaseStore(Database("sqlite://"))
    return [StrategySignals(store, cls()) for cls in BUILT_IN.values()]


def test_live_and_backtest_signals_are_equal_on_the_real_month(
    month: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = run(MarketState(SYMBOL, "replay"), month, strategy_sources(), monkeypatch)
    backtest = run(PreparedMarketState(SYMBOL, "replay", month), month, strategy_sources(), monkeypatch)
    assert backtest == live
    for name in BUILT_IN:
        count = sum(1 for source, *_ in live if source == f"strategy:{name}")
        assert count >= 3, (name, count)
    assert any(action == "close" for *_, action, _ in live)
    assert any(stop is not None for *_, stop in live)


def test_quiet_names_the_next_signal_candle(month: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    live = run(MarketState(SYMBOL, "replay"), month, strategy_sources()[2:3], monkeypatch)
    market = PreparedMarketState(SYMBOL, "replay", month)
    source = strategy_sources()[2]
    monkeypatch.setattr("agent.engine.signals.store_signal", lambda store, **values: True)
    for index, row in enumerate(month.itertuples()):
        candle = Candle(
            SYMBOL, row.timestamp.to_pydatetime(), row.open, row.high, row.low, row.close, row.volume
        )
        closed = {built.candle.timeframe: built.candle for built in market.add_candle(candle)}
        view = MarketView(candle.open_time + timedelta(minutes=1), candle, closed)
        source.on_candle(SYMBOL, view, market)
        if index % 997 == 0:
            coming = [t for _, t, *_ in live if t > view.now]
            assert source.quiet(SYMBOL, market) == (frozenset(), coming[0] if coming else None)


@pytest.mark.parametrize("name", ["ema_cross", "sma_cross"])
def test_the_built_in_crosses_signal_as_internal_signals(
    name: str, month: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DatabaseStore(Database("sqlite://"))
    ours = run(MarketState(SYMBOL, "replay"), month, [StrategySignals(store, BUILT_IN[name]())], monkeypatch)
    settings = load_settings(internal_signals=name, internal_signal_timeframe="15m")
    internal = run(MarketState(SYMBOL, "replay"), month, build_signal_sources(settings, store), monkeypatch)
    assert len(internal) >= 5
    assert {s for s, *_ in internal} == {f"internal:{name}"} and {s for s, *_ in ours} == {f"strategy:{name}"}
    assert [(t, a) for _, t, a, _ in ours] == [(t, a) for _, t, a, _ in internal]

"""Internal signals (INTERNAL_SIGNALS: the built-in crosses through ``StrategySignals``) decided ahead on a
prepared market state (so a backtest can skip to the next cross) are the ones decided candle by candle,
across a gap too, and ``quiet`` names the candle of the next one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agent.engine.positions import MarketView
from agent.engine.signals import read_alerts
from agent.journal.store import DatabaseStore
from agent.strategies.source import StrategySignals
from agent.wiring import build_signal_sources
from shared.config import load_settings
from shared.db import Database
from shared.errors import InvalidInput
from shared.marketdata.prepared import PreparedMarketState
from shared.marketdata.snapshot import MarketState
from shared.models import Candle, SignalAction
from tests.unit.shared.marketdata.test_prepared import minutes  # noqa: F401 - fixture

SYMBOL = "BTC-PERP"
SOURCES = [("sma_cross", "15m"), ("ema_cross", "15m"), ("sma_cross", "5m"), ("ema_cross", "5m")]
START = 37  # the market starts mid-bucket, as a replay after a warm-up does
Stored = list[tuple[str, str, datetime, str]]  # source, timeframe, time, action
Answers = dict[tuple[str, str], list[tuple[datetime, tuple[frozenset[str], datetime | None]]]]


def recording(monkeypatch: pytest.MonkeyPatch) -> Stored:
    """The signals the sources store, kept in this list instead of in a database."""
    signals: Stored = []

    def record(db: Database, **values: Any) -> bool:
        signals.append((values["source"], values["timeframe"], values["alert_time"], values["action"]))
        return True

    monkeypatch.setattr("agent.engine.signals.store_signal", record)
    return signals


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch) -> Stored:
    return recording(monkeypatch)


@pytest.fixture(scope="module")
def gapped(minutes: pd.DataFrame) -> pd.DataFrame:  # noqa: F811
    """The prepared-state test's minutes with one gap more: 13:59 then closes two 5m, 15m and 1h candles."""
    times = minutes["timestamp"]
    kept = ~times.between(pd.Timestamp("2022-01-06 13:51Z"), pd.Timestamp("2022-01-06 13:58Z"))
    return minutes[kept].reset_index(drop=True)


def internal(strategy: str, timeframe: str) -> StrategySignals:
    """The source INTERNAL_SIGNALS=strategy, INTERNAL_SIGNAL_TIMEFRAME=timeframe builds."""
    settings = load_settings(internal_signals=strategy, internal_signal_timeframe=timeframe)
    (source,) = build_signal_sources(settings, DatabaseStore(Database("sqlite://")))
    assert isinstance(source, StrategySignals) and source.source == f"internal:{strategy}"
    return source


def replay(market: MarketState, frame: pd.DataFrame, join: int) -> Answers:
    """Give ``market`` every minute from START; the sources see them from ``join`` on. What each source's
    ``quiet`` answered after each minute (and before its first, at ``join``), by source."""
    sources = [internal(strategy, tf) for strategy, tf in SOURCES]
    answers: Answers = {(s.strategy.name, s.timeframe): [] for s in sources}
    for index, row in enumerate(frame.iloc[START:].itertuples(), start=START):
        candle = Candle(
            SYMBOL, row.timestamp.to_pydatetime(), row.open, row.high, row.low, row.close, row.volume
        )
        closed = {built.candle.timeframe: built.candle for built in market.add_candle(candle)}
        if index < join:
            continue
        view = MarketView(candle.open_time + timedelta(minutes=1), candle, closed)
        for source in sources:
            if index == join:
                answers[source.strategy.name, source.timeframe].append(
                    (view.now, source.quiet(SYMBOL, market))
                )
            source.on_candle(SYMBOL, view, market)
            answers[source.strategy.name, source.timeframe].append((view.now, source.quiet(SYMBOL, market)))
    return answers


@pytest.fixture(scope="module")
def from_start(gapped: pd.DataFrame) -> tuple[Stored, Answers]:
    """The incremental rule's signals and ``quiet`` answers when the sources see every minute from START."""
    with pytest.MonkeyPatch.context() as patch:
        signals = recording(patch)
        return signals, replay(MarketState(SYMBOL, "replay"), gapped, START)


def first_cross(frame: pd.DataFrame, signals: Stored) -> tuple[datetime, int]:
    """The first SMA 15m cross after 3,000 minutes, and the minute that closes the 15m candle before it."""
    closes = frame["timestamp"] + pd.Timedelta(minutes=1)
    cross = next(
        t
        for source, tf, t, _ in signals
        if (source, tf) == ("internal:sma_cross", "15m") and t > closes[3_000]
    )
    at = int(np.flatnonzero(closes == cross)[0])
    return cross, max(i for i in range(at) if closes[i].minute % 15 == 0)


@pytest.mark.parametrize("join", ["start", "the close before a cross", "the minute after it"])
def test_prepared_signals_are_the_incremental_ones_and_quiet_names_the_next(
    join: str, gapped: pd.DataFrame, from_start: tuple[Stored, Answers], stored: Stored
) -> None:
    cross, before = first_cross(gapped, from_start[0])
    first = {"start": START, "the close before a cross": before, "the minute after it": before + 1}[join]
    if first == START:
        expected, incremental = from_start
    else:
        incremental = replay(MarketState(SYMBOL, "replay"), gapped, first)
        expected = list(stored)
        stored.clear()
    market = PreparedMarketState(SYMBOL, "replay", gapped)
    prepared = replay(market, gapped, first)
    assert stored == expected
    assert (np.diff(market.closing_minutes("15m")) == 0).any()  # the gap was crossed: one minute, two rows
    if join != "start":  # a signal reads the candles before it, closed before the source started or not
        assert cross in [t for _, _, t, _ in stored]
    for strategy, timeframe in SOURCES:
        times = [t for source, tf, t, _ in stored if source == f"internal:{strategy}" and tf == timeframe]
        assert len(times) >= 5, (strategy, timeframe)
        assert all(answer == (frozenset({timeframe}), None) for _, answer in incremental[strategy, timeframe])
        (_, before_first), *after = prepared[strategy, timeframe]
        assert before_first == (frozenset({timeframe}), None)  # its first candle is not known yet
        for now, answer in after:
            coming = [t for t in times if t > now]
            assert answer == (frozenset(), coming[0] if coming else None), now


def test_historical_alerts_are_read_as_signals_in_time_order(tmp_path: Path) -> None:
    """TradingView's words and times as the webhook reads them (long/exit, epoch ms, ISO with Z), sorted."""
    path = tmp_path / "alerts.csv"
    path.write_text(
        "time,symbol,action,stop_loss,id\n"
        "2022-01-05T14:00:00Z,BTCUSDT.P,Long,41000,a\n"
        "1641340800000,ETH-PERP,exit,,\n"
    )
    first, second = read_alerts(path)
    assert (first.symbol, first.action, first.alert_time, first.idempotency_key) == (
        "ETH-PERP", SignalAction.CLOSE, datetime(2022, 1, 5, tzinfo=UTC), "replay:2:2022-01-05T00:00:00+00:00"
    )  # fmt: skip
    assert (second.symbol, second.action, second.stop_loss, second.source) == (
        "BTC-PERP", SignalAction.BUY, 41_000.0, "tradingview"
    )  # fmt: skip
    assert second.alert_time == datetime(2022, 1, 5, 14, tzinfo=UTC)


def test_bad_alert_rows_are_all_named_and_nothing_is_read(tmp_path: Path) -> None:
    path = tmp_path / "alerts.csv"
    path.write_text(
        "time,symbol,action\n"
        "2022-01-05T14:00:00Z,BTC-PERP,buy\n"
        "2022-01-05T14:01:00Z,BTC-PERP,hold\n"
        "yesterday,BTC-PERP,sell\n"
        "2022-01-05T14:03:00Z,NOPE,sell\n"
    )
    with pytest.raises(InvalidInput) as caught:
        read_alerts(path)
    assert [p.field for p in caught.value.problems] == [
        "alerts.csv row 2",
        "alerts.csv row 3",
        "alerts.csv row 4",
    ]
    assert "action 'hold' is not buy, long, sell, short, close, exit" in caught.value.problems[0].message
    assert "time 'yesterday'" in caught.value.problems[1].message
    json_path = tmp_path / "alerts.json"
    json_path.write_text('{"time": 1}')
    with pytest.raises(InvalidInput, match="must hold a list"):
        read_alerts(json_path)

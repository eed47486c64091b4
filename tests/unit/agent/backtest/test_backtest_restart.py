"""A paper run on a replay, stopped and started again on the same books, never travels back in time: the
replay resumes after the last market time booked, so no fill is timed before the position it closes."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from agent.wiring import build_engine
from shared.db import Database, PaperFillRow, PaperOrderRow, TradeRow
from shared.marketdata.feeds import ReplayFeed, load_candle_csv
from tests.conftest import REAL_CANDLES, wait_for

ROWS = 4_000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "btc-4000.csv"
    real = load_candle_csv(REAL_CANDLES).iloc[:ROWS]
    real.assign(timestamp=real["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(path, index=False)
    return path


def _run(settings: Any, db: Database, until: int | None) -> tuple[ReplayFeed, Any]:
    """A paper run on the replay until its cursor reaches ``until`` (None: the end of the file)."""
    if until is None:
        return _run_until(settings, db, lambda feed, _: feed.remaining == 0)
    return _run_until(settings, db, lambda feed, _: feed.cursor >= until)


def _run_until(
    settings: Any, db: Database, done: Callable[[ReplayFeed, Any], bool]
) -> tuple[ReplayFeed, Any]:
    engine = build_engine(settings, db, publisher=None)
    feed = engine.feeds["BTC-PERP"]
    assert isinstance(feed, ReplayFeed)
    engine.start()
    try:
        wait_for(lambda: done(feed, engine), timeout_s=120)
        time.sleep(0.3)
    finally:
        engine.stop()
    return feed, engine


def test_a_restart_resumes_after_the_booked_market_time(data: Path, make_settings: Any) -> None:
    settings = make_settings(
        market_data_source="replay", replay_file=str(data), replay_speed=0, replay_loop=False,
        internal_signals="ema_cross", internal_signal_timeframe="5m", kelly_fraction=0,
    )  # fmt: skip
    db = Database(settings.database_url)
    db.migrate()
    _, first = _run(settings, db, until=2_200)
    stopped_at = first.status.market_time
    booked = first.exchange.booked_until()
    assert booked is not None and booked <= stopped_at
    second_feed, _ = _run(settings, db, until=None)
    # the second run's first candle closes after the last booked time (before the fix it started at row
    # 300 again, 1,900 minutes earlier, and stopped open positions with prices from before they opened)
    first_close = int(second_feed.close_stamps[second_feed._start])
    assert first_close > booked.timestamp() and second_feed._start > 300
    with db.session() as session:
        trades = list(session.scalars(select(TradeRow).order_by(TradeRow.opened_at)))
        orders = {o.exchange_id: o for o in session.scalars(select(PaperOrderRow))}
        fills = list(session.scalars(select(PaperFillRow)))
    assert len(trades) >= 5
    for trade in trades:
        assert trade.opened_at <= trade.closed_at, trade
    for earlier, later in itertools.pairwise(trades):  # one position at a time per market
        if earlier.symbol == later.symbol:
            assert later.opened_at >= earlier.opened_at
    for fill in fills:  # no fill before the order it fills was placed
        assert fill.time >= orders[fill.exchange_id].created_at, fill.trade_id
    db.dispose()


def test_a_looping_replay_goes_on_later_and_a_restart_goes_on_in_the_same_pass(
    tmp_path: Path, make_settings: Any
) -> None:
    path = tmp_path / "btc-1500.csv"
    real = load_candle_csv(REAL_CANDLES).iloc[:1_500]
    real.assign(timestamp=real["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(path, index=False)
    settings = make_settings(
        market_data_source="replay", replay_file=str(path), replay_speed=0, replay_loop=True,
        internal_signals="ema_cross", internal_signal_timeframe="5m", kelly_fraction=0,
    )  # fmt: skip
    db = Database(settings.database_url)
    db.migrate()
    file_end = real["timestamp"].iloc[-1].to_pydatetime()
    first_feed, engine = _run_until(settings, db, lambda feed, _: feed.wrapped == 1 and feed.cursor >= 1_000)
    # the second pass runs a whole day past the first (before the fix the clock went back to the start)
    assert engine.status.market_time is not None and engine.status.market_time > file_end
    booked = engine.exchange.booked_until()
    assert booked is not None and booked > file_end

    # the restart steps on past the booked time (its warm-up candles all lie before it); had it rewound to
    # the file's first pass, its clock would not get there within the run
    passes: list[int] = []

    def stepped_on(feed: ReplayFeed, run: Any) -> bool:
        if run.status.market_time is None or run.status.market_time <= booked:
            return False
        passes.append(feed.wrapped)
        return True

    again_feed, _ = _run_until(settings, db, stepped_on)
    probe = ReplayFeed(path, "BTC-PERP")
    probe.resume_after(booked)
    assert again_feed._start == probe._start != 300  # resumed right after the booked time, not rewound
    # in the pass where the first run stopped (or the next, when it had booked that pass's last candle)
    assert first_feed.wrapped >= 1 and passes[0] - first_feed.wrapped in (0, 1)
    with db.session() as session:
        trades = list(session.scalars(select(TradeRow)))
        orders = {o.exchange_id: o for o in session.scalars(select(PaperOrderRow))}
        fills = list(session.scalars(select(PaperFillRow)))
    assert len(trades) >= 3 and any(t.closed_at > file_end for t in trades)
    for trade in trades:
        assert trade.opened_at <= trade.closed_at, trade
    for fill in fills:
        assert fill.time >= orders[fill.exchange_id].created_at, fill.trade_id
    db.dispose()

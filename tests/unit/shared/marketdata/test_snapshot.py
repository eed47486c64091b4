from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from shared.indicators import compute
from shared.marketdata.candles import aggregate_history
from shared.marketdata.feeds import ReplayFeed
from shared.marketdata.funding import FundingRate
from shared.marketdata.snapshot import MarketState
from tests.conftest import REAL_CANDLES


def test_snapshot_indicators_equal_batch_per_timeframe() -> None:
    feed = ReplayFeed(REAL_CANDLES, "BTC-PERP", start_index=0)
    minutes = [feed.next_candle() for _ in range(3000)]
    state = MarketState("BTC-PERP", feed.source)
    for minute in minutes:
        state.add_candle(minute)
    snap = state.snapshot()
    assert snap.price == minutes[-1].close and snap.source == "replay"
    built = aggregate_history(minutes)
    for tf in ("1m", "15m", "1h"):
        closed = [b.candle for b in built[tf] if not b.partial]
        frame = pd.DataFrame(
            [(c.open, c.high, c.low, c.close, c.volume) for c in closed],
            columns=["open", "high", "low", "close", "volume"],
            index=pd.DatetimeIndex([c.open_time for c in closed]),
        )
        expected = compute(frame).iloc[-1]
        view = snap.timeframes[tf]
        assert view.candles == len(closed) and view.last_closed == closed[-1]
        for column in ("rsi", "ema_20", "atr"):
            assert view.indicators[column] == pytest.approx(float(expected[column]), rel=1e-9), (tf, column)
    # 3000 minutes from 23:01 end at 01:00 two days later: the 1h candle of 01:00 is still open
    assert (
        snap.timeframes["1h"].partial is not None and snap.timeframes["1h"].partial.close == minutes[-1].close
    )
    assert snap.timeframes["1d"].last_closed is not None
    assert snap.levels and all(lv.touches >= 2 for lv in snap.levels)
    json.dumps(snap.as_dict())  # serialisable for the API and the analysts' prompts


def test_a_snapshot_is_built_once_per_state_and_again_after_a_candle_a_book_or_funding() -> None:
    feed = ReplayFeed(REAL_CANDLES, "BTC-PERP")
    market = MarketState("BTC-PERP", "replay")
    for _ in range(30):
        market.add_candle(feed.next_candle())
    first = market.snapshot()
    assert market.snapshot() is first  # the same state: the same snapshot
    market.add_candle(feed.next_candle())
    after_candle = market.snapshot()
    assert after_candle is not first and after_candle.price == market.price
    market.book = {"bid": 1.0, "ask": 2.0}
    with_book = market.snapshot()
    assert with_book is not after_candle and with_book.book == {"bid": 1.0, "ask": 2.0}
    market.stale = True
    assert market.snapshot().stale is True
    market.funding = FundingRate("BTC-PERP", 0.0001, datetime(2022, 1, 1, tzinfo=UTC))
    assert market.snapshot().funding is market.funding

from __future__ import annotations

import json

import pandas as pd
import pytest

from shared.indicators import compute
from shared.marketdata.candles import aggregate_history
from shared.marketdata.feeds import ReplayFeed
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

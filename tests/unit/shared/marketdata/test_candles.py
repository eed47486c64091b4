from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from shared.marketdata.candles import TickCandleBuilder, TimeframeAggregator, aggregate_history, bucket_start
from shared.marketdata.feeds import load_candle_csv
from shared.models import Candle
from tests.conftest import REAL_CANDLES


def minute(t: datetime, o: float, h: float, low: float, c: float, v: float = 1.0) -> Candle:
    return Candle("BTC-PERP", t, o, h, low, c, v)


@pytest.fixture(scope="module")
def real_minutes() -> list[Candle]:
    frame = load_candle_csv(REAL_CANDLES)
    return [
        Candle("BTC-PERP", t.to_pydatetime(), o, h, low, c, v)
        for t, o, h, low, c, v in frame[["timestamp", "open", "high", "low", "close", "volume"]].itertuples(
            index=False
        )
    ]


def test_buckets_are_utc_aligned() -> None:
    t = datetime(2022, 1, 3, 13, 47, 12, tzinfo=UTC)
    assert bucket_start(t, 300) == datetime(2022, 1, 3, 13, 45, tzinfo=UTC)
    assert bucket_start(t, 14_400) == datetime(2022, 1, 3, 12, 0, tzinfo=UTC)
    assert bucket_start(t, 86_400) == datetime(2022, 1, 3, tzinfo=UTC)


def test_a_candle_closes_on_its_last_minute_and_across_the_day_boundary() -> None:
    aggregator = TimeframeAggregator(["5m", "1d"])
    start = datetime(2022, 1, 1, 23, 55, tzinfo=UTC)
    closed = []
    for i in range(5):
        closed += aggregator.add(minute(start + timedelta(minutes=i), 100 + i, 101 + i, 99 + i, 100.5 + i))
    five, day = closed  # 23:59 is the last minute of the 5m bucket and of the day
    assert day.candle.timeframe == "1d" and day.candle.open_time == datetime(2022, 1, 1, tzinfo=UTC)
    assert day.minutes == 5 and day.candle.close == 104.5
    assert five.candle.timeframe == "5m" and five.candle.open_time == start and not five.partial
    assert (five.candle.open, five.candle.high, five.candle.low, five.candle.close) == (100, 105, 99, 104.5)
    assert five.candle.volume == 5 and five.minutes == 5
    assert aggregator.partials() == {}


def test_gaps_stay_gaps() -> None:
    aggregator = TimeframeAggregator(["5m"])
    start = datetime(2022, 1, 1, 0, 0, tzinfo=UTC)
    aggregator.add(minute(start, 1, 2, 0.5, 1.5))
    aggregator.add(minute(start + timedelta(minutes=1), 1.5, 2, 1, 1.8))
    # minutes 2..11 are missing: the first bucket closes (with 2 minutes), bucket 5-9 never exists
    closed = aggregator.add(minute(start + timedelta(minutes=12), 3, 3, 3, 3))
    assert [(c.candle.open_time.minute, c.minutes) for c in closed] == [(0, 2)]
    partial = aggregator.partials()["5m"]
    assert partial.partial and partial.candle.open_time.minute == 10 and partial.minutes == 1


def test_out_of_order_minutes_are_refused() -> None:
    aggregator = TimeframeAggregator()
    t = datetime(2022, 1, 1, tzinfo=UTC)
    aggregator.add(minute(t, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="not after"):
        aggregator.add(minute(t, 1, 1, 1, 1))


def test_bulk_equals_pandas_resample_on_the_real_month(real_minutes: list[Candle]) -> None:
    built = aggregate_history(real_minutes, ["15m", "4h"])
    frame = pd.DataFrame(
        [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in real_minutes],
        columns=["t", "open", "high", "low", "close", "volume"],
    ).set_index("t")
    for timeframe, rule in (("15m", "15min"), ("4h", "4h")):
        expected = (
            frame.resample(rule, label="left", closed="left")
            .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
            .dropna()
        )
        candles = built[timeframe]
        assert [c.candle.open_time for c in candles] == list(expected.index.to_pydatetime())
        got = pd.DataFrame(
            [(c.candle.open, c.candle.high, c.candle.low, c.candle.close, c.candle.volume) for c in candles]
        )
        pd.testing.assert_frame_equal(
            got, expected.reset_index(drop=True).set_axis(range(5), axis=1), rtol=1e-12
        )
        assert [c.partial for c in candles[:-1]] == [False] * (len(candles) - 1)
    # the file's last candle opens 05:31: the 15m candle from 05:30 and the 4h one from 04:00 are still open
    assert built["15m"][-1].partial and built["15m"][-1].minutes == 2
    assert built["4h"][-1].partial and built["4h"][-1].candle.open_time.hour == 4


def test_live_ticks_and_bulk_history_give_the_same_candles(real_minutes: list[Candle]) -> None:
    minutes = real_minutes[:600]
    builder = TickCandleBuilder("BTC-PERP")
    aggregator = TimeframeAggregator()
    live = {tf: [] for tf in ("1m", "5m", "15m", "1h", "4h", "1d")}
    for m in minutes:  # each minute as four trades: open, high, low, close
        for second, price in ((0, m.open), (15, m.high), (30, m.low), (45, m.close)):
            for closed_minute in builder.add(price, m.volume / 4, m.open_time + timedelta(seconds=second)):
                for built in aggregator.add(closed_minute):
                    live[built.candle.timeframe].append(built)
    for closed_minute in builder.flush(minutes[-1].open_time + timedelta(minutes=1)):
        for built in aggregator.add(closed_minute):
            live[built.candle.timeframe].append(built)
    bulk = aggregate_history(minutes)
    for timeframe, candles in live.items():
        closed_bulk = [c for c in bulk[timeframe] if not c.partial]
        assert [c.candle.open_time for c in candles] == [c.candle.open_time for c in closed_bulk]
        for a, b in zip(candles, closed_bulk, strict=True):
            assert a.candle.close == b.candle.close and a.candle.high == b.candle.high
            assert a.candle.volume == pytest.approx(b.candle.volume, rel=1e-12)

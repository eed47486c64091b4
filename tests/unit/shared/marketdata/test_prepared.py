"""The prepared (vectorised) market state shows exactly what the incremental one shows, minute by minute,
on the real month with gaps cut into it."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from shared.marketdata.feeds import load_candle_csv
from shared.marketdata.prepared import PreparedMarketState
from shared.marketdata.snapshot import MarketState
from shared.models import Candle
from tests.conftest import REAL_CANDLES


def same(a: Any, b: Any, where: str = "") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), (where, set(a) ^ set(b))
        for key in a:
            same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{n}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-9), (where, a, b)
    else:
        assert a == b, (where, a, b)


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    real = load_candle_csv(REAL_CANDLES).iloc[:12_000]
    cut = [100, 101, 102, 5_000, 7_003, *range(8_000, 8_090)]  # gaps inside 5m, 15m and 1h buckets
    return real.drop(index=cut).reset_index(drop=True)


def test_every_minute_closes_the_same_candles_and_every_snapshot_is_equal(minutes: pd.DataFrame) -> None:
    start = 37  # the states start mid-bucket, as a replay after a warm-up does
    incremental = MarketState("BTC-PERP", "replay")
    prepared = PreparedMarketState("BTC-PERP", "replay", minutes)
    for index, row in enumerate(minutes.iloc[start:].itertuples(), start=start):
        candle = Candle(
            "BTC-PERP", row.timestamp.to_pydatetime(), row.open, row.high, row.low, row.close, row.volume
        )
        closed_incremental, closed_prepared = incremental.add_candle(candle), prepared.add_candle(candle)
        assert [b.candle.timeframe for b in closed_incremental] == [
            b.candle.timeframe for b in closed_prepared
        ]
        for built_i, built_p in zip(closed_incremental, closed_prepared, strict=True):
            same(vars(built_i.candle), vars(built_p.candle), f"minute {index}")
            assert built_i.minutes == built_p.minutes
        if index % 499 == 0 or index in (99, 103, 104, 4_999, 7_999, 8_000, 8_001):
            same(incremental.snapshot().as_dict(), prepared.snapshot().as_dict(), f"minute {index}")
            for timeframe in ("1m", "5m", "15m", "1h"):
                assert incremental.trend(timeframe) == prepared.trend(timeframe)
                assert list(incremental.closes(timeframe)) == pytest.approx(list(prepared.closes(timeframe)))


def test_a_minute_out_of_order_is_refused(minutes: pd.DataFrame) -> None:
    prepared = PreparedMarketState("BTC-PERP", "replay", minutes)
    first, third = minutes.iloc[0], minutes.iloc[2]
    prepared.add_candle(Candle("BTC-PERP", first.timestamp.to_pydatetime(), 1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="not the next prepared minute"):
        prepared.add_candle(Candle("BTC-PERP", third.timestamp.to_pydatetime(), 1, 1, 1, 1, 1))

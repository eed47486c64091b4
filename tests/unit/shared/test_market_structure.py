from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.indicators import compute
from shared.market_structure import (
    anomalies,
    correlation_matrix,
    gaps,
    pivots,
    rsi_divergences,
    support_resistance,
    trend_regime,
    volatility_regime,
)
from shared.marketdata.feeds import load_candle_csv
from tests.conftest import REAL_CANDLES


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return load_candle_csv(REAL_CANDLES).set_index("timestamp")


def frame(closes: list[float]) -> pd.DataFrame:
    index = pd.date_range("2022-01-01", periods=len(closes), freq="1min", tz="UTC")
    c = pd.Series(closes, index=index, dtype=float)
    return pd.DataFrame({"open": c, "high": c + 0.5, "low": c - 0.5, "close": c, "volume": 1.0})


def test_pivots_are_local_extremes() -> None:
    data = frame([1, 2, 3, 4, 5, 9, 5, 4, 3, 2, 1, 2, 3])
    highs = pivots(data["high"], bars=3)
    assert list(highs.index) == [data.index[5]] and highs.iloc[0] == 9.5


def test_levels_cluster_repeated_touches() -> None:
    # price bounces off ~100 three times and is capped near ~110 twice
    path = [
        105,
        103,
        101,
        100,
        101,
        103,
        106,
        108,
        110,
        108,
        106,
        103,
        100.2,
        103,
        106,
        109,
        110.1,
        107,
        104,
        101,
        99.9,
        102,
        104,
        105,
        105,
    ]
    levels = support_resistance(frame(path), tolerance=0.01, bars=2)
    support = [lv for lv in levels if lv.kind == "support"]
    resistance = [lv for lv in levels if lv.kind == "resistance"]
    assert (
        len(support) == 1 and support[0].touches == 3 and support[0].price == pytest.approx(99.53, abs=0.05)
    )
    assert (
        len(resistance) == 1
        and resistance[0].touches == 2
        and resistance[0].price == pytest.approx(110.55, abs=0.05)
    )


def test_levels_on_the_real_month(real: pd.DataFrame) -> None:
    day = real.iloc[:1440]
    levels = support_resistance(day)
    last = day["close"].iloc[-1]
    assert levels and all((lv.price <= last) == (lv.kind == "support") for lv in levels)
    assert all(lv.touches >= 2 for lv in levels)
    assert [lv.price for lv in levels] == sorted(lv.price for lv in levels)


def test_regimes_on_constructed_markets() -> None:
    rising = compute(frame([100 + i * 0.5 + (i % 3) * 0.1 for i in range(300)]))
    assert trend_regime(rising.iloc[-1]) == "trending_up"
    falling = compute(frame([300 - i * 0.5 - (i % 3) * 0.1 for i in range(300)]))
    assert trend_regime(falling.iloc[-1]) == "trending_down"
    assert trend_regime(compute(frame([100.0] * 10)).iloc[-1]) == "unknown"
    calm_then_wild = frame([100 + np.sin(i / 5) * (0.2 if i < 550 else 5) for i in range(600)])
    assert volatility_regime(compute(calm_then_wild)) == "high"


def test_bearish_divergence_higher_high_on_weaker_momentum() -> None:
    up_fast = [100 + 2 * i for i in range(15)]  # strong rally to 128
    pullback = [128 - i for i in range(1, 8)]  # to 121
    up_slow = [121 + 0.6 * i for i in range(1, 20)]  # grinds to a higher high, 132.4
    fall = [132.4 - 2 * i for i in range(1, 10)]
    data = compute(frame(up_fast + pullback + up_slow + fall))
    found = rsi_divergences(data, bars=3)
    assert any(d.kind == "bearish" and d.price_change > 0 and d.rsi_change < 0 for d in found)


def test_anomalies_flag_a_spike_and_gaps_are_counted(real: pd.DataFrame) -> None:
    data = real.iloc[:600].copy()
    data.iloc[500, data.columns.get_loc("close")] *= 1.05  # a 5 % jump in one minute
    data.iloc[300, data.columns.get_loc("volume")] *= 50
    flags = anomalies(data)
    assert bool(flags["price_anomaly"].iloc[500]) and bool(flags["volume_anomaly"].iloc[300])
    assert flags["price_anomaly"].iloc[:500].mean() < 0.02  # real fat tails: rare, not absent
    assert gaps(real.index) == []  # this recording happens to be complete
    holed = real.index.delete([*range(100, 103), 700])
    found = gaps(holed)
    assert [(g.after, g.missing_candles) for g in found] == [
        (real.index[99].to_pydatetime(), 3),
        (real.index[699].to_pydatetime(), 1),
    ]


def test_correlation_matrix(real: pd.DataFrame) -> None:
    btc = real["close"].iloc[:1000]
    rng = np.random.default_rng(1)
    noise = pd.Series(np.exp(np.cumsum(rng.normal(0, 0.001, 1000))) * 100, index=btc.index)
    matrix = correlation_matrix({"BTC-PERP": btc, "DOUBLE-PERP": btc * 2, "NOISE-PERP": noise})
    assert matrix.loc["BTC-PERP", "DOUBLE-PERP"] == pytest.approx(1.0)
    assert abs(matrix.loc["BTC-PERP", "NOISE-PERP"]) < 0.2
    assert np.allclose(matrix.to_numpy(), matrix.to_numpy().T)

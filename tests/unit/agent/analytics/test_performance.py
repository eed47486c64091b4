"""Performance analytics: hand-computed examples, edge cases, properties, breakdowns, real data."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.analytics.performance import (
    TradeRecord,
    breakdown,
    compute_metrics,
    drawdown_series,
    equity_from_trades,
)

REAL_CANDLES = Path(__file__).resolve().parents[4].parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"
DAY = 86_400.0


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


def daily_equity(values: list[float]) -> pd.Series:
    """One point per day at 00:00 UTC, from 2024-01-01."""
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=len(values), freq="D", tz="UTC"))


def trade(
    pnl: float,
    opened: datetime,
    closed: datetime,
    *,
    side: str = "BUY",
    reason: str = "take_profit",
    source: str = "tradingview",
    analyst: str = "rules",
    symbol: str = "BTC-PERP",
    r: float | None = None,
) -> TradeRecord:
    return TradeRecord(
        symbol, side, 0.01, 40_000.0, 40_100.0, pnl, 0.5, opened, closed, reason, source, analyst, r
    )


# Equity 1000 -> 1100 (+10 %) -> 990 (-10 %) -> 1089 (+10 %) -> 1143.45 (+5 %), one point per day at 00:00.
EQUITY = daily_equity([1000.0, 1100.0, 990.0, 1089.0, 1143.45])
TRADES = [
    trade(60.0, at(1, 0), at(1, 12), r=2.0),  # A: win, 00:00-12:00 on day 1
    trade(
        -30.0,
        at(1, 6),
        at(2, 0),
        side="SELL",
        reason="stop_loss",
        source="internal:ema_cross",
        r=-1.0,
        symbol="ETH-PERP",
    ),  # B: loss; fmt: skip
    trade(15.0, at(3, 0), at(3, 12), r=None),  # C: win, no known risk
    trade(0.0, at(4, 0), at(4, 6), side="SELL", reason="signal", analyst="claude", r=0.0),  # D: breakeven
]


def test_hand_computed_equity_metrics() -> None:
    m = compute_metrics(EQUITY, TRADES, starting_equity=1000.0, fees_paid=4.0, funding_paid=1.25)
    # total return = 1143.45 / 1000 - 1
    assert m.total_return == pytest.approx(0.14345)
    assert m.final_equity == pytest.approx(1143.45)
    # peak 1100 on Jan 2, trough 990 on Jan 3: 990 / 1100 - 1 = -0.1
    assert m.max_drawdown == pytest.approx(-0.1)
    # under water from the Jan 2 peak until 1143.45 >= 1100 on Jan 5: 3 days
    assert m.max_drawdown_duration_s == pytest.approx(3 * DAY)
    # points sit on the day ends, so the daily returns are +0.1, -0.1, +0.1, +0.05
    # mean = 0.15 / 4 = 0.0375; squared deviations 0.0625², 0.1375², 0.0625², 0.0125² sum to 0.026875
    # std(ddof=1) = sqrt(0.026875 / 3) = 0.0946485; Sharpe = 0.0375 / 0.0946485 * sqrt(365) = 7.5694
    assert m.sharpe == pytest.approx(0.0375 / math.sqrt(0.026875 / 3) * math.sqrt(365))
    assert m.sharpe == pytest.approx(7.5694, abs=1e-4)
    # downside deviation = sqrt((0 + 0.01 + 0 + 0) / 4) = 0.05; Sortino = 0.0375 / 0.05 * sqrt(365) = 14.3287
    assert m.sortino == pytest.approx(0.75 * math.sqrt(365))
    assert m.sortino == pytest.approx(14.3287, abs=1e-4)
    # span = 4 days: CAGR = 1.14345 ** (365.25 / 4) - 1
    assert m.cagr == pytest.approx(1.14345 ** (365.25 / 4) - 1)
    assert m.start == "2024-01-01T00:00:00+00:00"
    assert m.end == "2024-01-05T00:00:00+00:00"
    assert (m.fees_paid, m.funding_paid) == (4.0, 1.25)


def test_hand_computed_trade_metrics() -> None:
    m = compute_metrics(EQUITY, TRADES, starting_equity=1000.0)
    assert (m.trade_count, m.wins, m.losses) == (4, 2, 1)
    # 2 wins of 4 trades (the breakeven one counts in the denominator)
    assert m.win_rate == pytest.approx(0.5)
    assert m.avg_win == pytest.approx(37.5)  # (60 + 15) / 2
    assert m.avg_loss == pytest.approx(-30.0)
    assert m.profit_factor == pytest.approx(2.5)  # 75 / |-30|
    assert m.expectancy_usd == pytest.approx(11.25)  # (60 - 30 + 15 + 0) / 4
    assert m.expectancy_r == pytest.approx(1 / 3)  # (2 - 1 + 0) / 3, C has no R
    assert (m.gross_profit, m.gross_loss) == (pytest.approx(75.0), pytest.approx(-30.0))
    assert (m.best_trade, m.worst_trade) == (60.0, -30.0)
    # A and B overlap: union [Jan 1 00:00, Jan 2 00:00] = 24 h; C 12 h; D 6 h -> 42 h of 96 h
    assert m.exposure_time == pytest.approx(42 / 96)
    assert m.by_exit_reason == {"signal": 1, "stop_loss": 1, "take_profit": 2}
    assert m.by_signal_source == {
        "internal:ema_cross": {"trade_count": 1, "win_rate": 0.0, "pnl": -30.0, "expectancy_r": -1.0},
        # A, C, D: 2 wins of 3, pnl 75, R (2 + 0) / 2
        "tradingview": {"trade_count": 3, "win_rate": pytest.approx(2 / 3), "pnl": 75.0, "expectancy_r": 1.0},
    }
    # by market: B was the only ETH trade; A, C, D are BTC's (the same figures as tradingview's above)
    assert m.by_symbol == {
        "BTC-PERP": {"trade_count": 3, "win_rate": pytest.approx(2 / 3), "pnl": 75.0, "expectancy_r": 1.0},
        "ETH-PERP": {"trade_count": 1, "win_rate": 0.0, "pnl": -30.0, "expectancy_r": -1.0},
    }


def test_intraday_points_use_the_first_point_and_day_ends() -> None:
    # 100 at Jan 1 12:00 (start), 110 at 18:00, 99 at Jan 2 06:00, 121 at Jan 3 00:00 (a day end), end
    index = pd.DatetimeIndex(
        ["2024-01-01 12:00", "2024-01-01 18:00", "2024-01-02 06:00", "2024-01-03 00:00"], tz="UTC"
    )
    m = compute_metrics(pd.Series([100.0, 110.0, 99.0, 121.0], index=index), [], starting_equity=100.0)
    # daily values: start 100, Jan 2 00:00 -> 110, Jan 3 00:00 -> 121: returns +0.1, +0.1 -> zero deviation
    assert m.sharpe is None
    assert m.sortino is None  # no negative daily return
    # the intraday dip 110 -> 99 still counts for the drawdown: -10 %, 18:00 -> 00:00 two days later = 30 h
    assert m.max_drawdown == pytest.approx(-0.1)
    assert m.max_drawdown_duration_s == pytest.approx(30 * 3600)


def test_first_return_runs_from_the_first_point_to_the_first_day_end() -> None:
    # 100 at Jan 1 12:00 (start), 90 at 18:00, 99 at Jan 2 12:00, 108.9 at Jan 3 00:00
    index = pd.DatetimeIndex(
        ["2024-01-01 12:00", "2024-01-01 18:00", "2024-01-02 12:00", "2024-01-03 00:00"], tz="UTC"
    )
    m = compute_metrics(pd.Series([100.0, 90.0, 99.0, 108.9], index=index), [], starting_equity=100.0)
    # daily values: start 100, Jan 2 00:00 -> 90, Jan 3 00:00 -> 108.9: returns -0.1, +0.21
    # mean 0.055, std(ddof=1) = 0.31 / sqrt(2) = 0.2192031; Sharpe = 0.055 / 0.2192031 * sqrt(365) = 4.7936
    assert m.sharpe == pytest.approx(0.055 / (0.31 / math.sqrt(2)) * math.sqrt(365))
    assert m.sharpe == pytest.approx(4.7936, abs=1e-4)
    # downside deviation sqrt(0.01 / 2) = 0.0707107; Sortino = 0.055 / 0.0707107 * sqrt(365) = 14.8602
    assert m.sortino == pytest.approx(0.055 / math.sqrt(0.005) * math.sqrt(365))
    assert m.sortino == pytest.approx(14.8602, abs=1e-4)


def test_days_without_points_keep_the_previous_value() -> None:
    index = pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-01-05"], tz="UTC")
    m = compute_metrics(pd.Series([100.0, 90.0, 108.0], index=index), [], starting_equity=100.0)
    # daily values 100, 90, 90, 90, 108: returns -0.1, 0, 0, +0.2 (not just -0.1, +0.2)
    # mean 0.025; squared deviations 0.125², 0.025², 0.025², 0.175² sum to 0.0475 -> std sqrt(0.0475 / 3)
    assert m.sharpe == pytest.approx(0.025 / math.sqrt(0.0475 / 3) * math.sqrt(365))
    # downside deviation sqrt(0.01 / 4) = 0.05 -> Sortino = 0.025 / 0.05 * sqrt(365)
    assert m.sortino == pytest.approx(0.5 * math.sqrt(365))


def test_unrecovered_drawdown_lasts_until_the_last_point() -> None:
    # peak 120 on Jan 2, then 90 and 100: never recovered, Jan 2 -> Jan 4 = 2 days; worst 90 / 120 - 1
    m = compute_metrics(daily_equity([100.0, 120.0, 90.0, 100.0]), [], starting_equity=100.0)
    assert m.max_drawdown == pytest.approx(-0.25)
    assert m.max_drawdown_duration_s == pytest.approx(2 * DAY)


def test_longest_drawdown_is_not_the_deepest() -> None:
    # a deep short dip (100 -> 50 -> 100, 2 days) then a shallow long one (100 -> 99 x3 -> 101, 4 days)
    m = compute_metrics(daily_equity([100, 50, 100, 99, 99, 99, 101]), [], starting_equity=100.0)
    assert m.max_drawdown == pytest.approx(-0.5)
    assert m.max_drawdown_duration_s == pytest.approx(4 * DAY)


def test_no_trades() -> None:
    m = compute_metrics(EQUITY, [], starting_equity=1000.0)
    assert m.trade_count == 0
    assert m.win_rate is None and m.profit_factor is None and m.expectancy_usd is None
    assert m.expectancy_r is None and m.avg_win is None and m.avg_loss is None
    assert m.exposure_time == 0.0
    assert m.by_exit_reason == {} and m.by_signal_source == {}
    assert m.total_return == pytest.approx(0.14345)


def test_all_winners_have_no_profit_factor() -> None:
    trades = [trade(10.0, at(1), at(1, 1)), trade(5.0, at(2), at(2, 1))]
    m = compute_metrics(EQUITY, trades, starting_equity=1000.0)
    assert m.profit_factor is None
    assert m.win_rate == 1.0
    assert m.avg_loss is None
    assert m.expectancy_r is None  # no trade had an R


def test_all_losers_have_zero_profit_factor() -> None:
    m = compute_metrics(EQUITY, [trade(-10.0, at(1), at(1, 1))], starting_equity=1000.0)
    assert m.profit_factor == 0.0
    assert m.win_rate == 0.0


def test_flat_equity() -> None:
    m = compute_metrics(daily_equity([1000.0] * 10), [], starting_equity=1000.0)
    assert m.sharpe is None and m.sortino is None
    assert m.max_drawdown == 0.0 and m.max_drawdown_duration_s == 0.0
    assert m.total_return == 0.0 and m.cagr == pytest.approx(0.0)


def test_empty_equity() -> None:
    empty = pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    m = compute_metrics(empty, [], starting_equity=500.0)
    assert m.final_equity == 500.0 and m.total_return == 0.0
    assert m.cagr is None and m.sharpe is None and m.sortino is None and m.exposure_time is None
    assert m.max_drawdown == 0.0 and m.max_drawdown_duration_s == 0.0
    assert m.start is None and m.end is None
    json.dumps(m.as_dict(), allow_nan=False)


def test_one_point_equity() -> None:
    m = compute_metrics(daily_equity([1100.0]), [trade(100.0, at(1), at(1, 2))], starting_equity=1000.0)
    assert m.total_return == pytest.approx(0.1)
    assert m.cagr is None and m.sharpe is None and m.exposure_time is None
    assert m.start == m.end == "2024-01-01T00:00:00+00:00"
    assert m.win_rate == 1.0


def test_cagr_needs_a_day() -> None:
    index = pd.date_range("2024-01-01", periods=24, freq="h", tz="UTC")  # 23 h span
    m = compute_metrics(pd.Series(np.linspace(100, 110, 24), index=index), [], starting_equity=100.0)
    assert m.cagr is None
    year = pd.DatetimeIndex(["2023-01-01", "2024-01-01 06:00"], tz="UTC")  # exactly 365.25 days
    m = compute_metrics(pd.Series([100.0, 121.0], index=year), [], starting_equity=100.0)
    assert m.cagr == pytest.approx(0.21)


def test_exposure_is_clipped_to_the_equity_span() -> None:
    # the trade runs Dec 31 -> Jan 3; the equity spans Jan 1 -> Jan 5: 2 of 4 days exposed
    early = datetime(2023, 12, 31, tzinfo=UTC)
    m = compute_metrics(EQUITY, [trade(1.0, early, at(3))], starting_equity=1000.0)
    assert m.exposure_time == pytest.approx(0.5)


def test_naive_index_is_taken_as_utc_and_unsorted_is_rejected() -> None:
    naive = pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2024-01-01", "2024-01-03"]))
    assert compute_metrics(naive, [], starting_equity=1.0).start == "2024-01-01T00:00:00+00:00"
    with pytest.raises(ValueError, match="increasing"):
        compute_metrics(naive.iloc[::-1], [], starting_equity=1.0)
    with pytest.raises(ValueError, match="starting_equity"):
        compute_metrics(naive, [], starting_equity=0.0)
    with pytest.raises(TypeError):
        compute_metrics(pd.Series([1.0, 2.0]), [], starting_equity=1.0)


def test_as_dict_is_json_safe() -> None:
    m = compute_metrics(daily_equity([1000.0, 1000.0]), [trade(5.0, at(1), at(1, 1))], starting_equity=1000.0)
    data = m.as_dict()
    assert data["profit_factor"] is None and data["sharpe"] is None
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["trade_count"] == 1
    for key in ("total_return", "max_drawdown", "sharpe", "sortino", "win_rate", "by_signal_source"):
        assert key in data


equity_values = st.lists(st.floats(min_value=0.01, max_value=1e9, allow_nan=False), min_size=1, max_size=60)


def minute_series(values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=len(values), freq="17min", tz="UTC"))


@given(equity_values)
def test_max_drawdown_is_between_minus_one_and_zero(values: list[float]) -> None:
    m = compute_metrics(minute_series(values), [], starting_equity=values[0])
    assert -1.0 <= m.max_drawdown <= 0.0
    peak = np.maximum.accumulate(values)
    assert m.max_drawdown == pytest.approx(float(np.min(np.array(values) / peak - 1)), abs=1e-12)
    assert m.max_drawdown_duration_s >= 0.0


@given(equity_values)
def test_non_decreasing_equity_has_no_drawdown(values: list[float]) -> None:
    m = compute_metrics(minute_series(sorted(values)), [], starting_equity=values[0])
    assert m.max_drawdown == 0.0
    assert m.max_drawdown_duration_s == 0.0


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), max_size=40))
def test_win_rate_is_a_fraction(pnls: list[float]) -> None:
    trades = [trade(p, at(1), at(1, 1)) for p in pnls]
    m = compute_metrics(EQUITY, trades, starting_equity=1000.0)
    assert m.trade_count == len(pnls)
    if pnls:
        assert m.win_rate is not None and 0.0 <= m.win_rate <= 1.0
        assert m.win_rate == pytest.approx(sum(p > 0 for p in pnls) / len(pnls))
    else:
        assert m.win_rate is None
    assert m.wins + m.losses <= m.trade_count


def test_breakdown_groups() -> None:
    by_source = breakdown(TRADES, lambda t: t.signal_source)
    assert list(by_source) == ["internal:ema_cross", "tradingview"]
    tv = by_source["tradingview"]
    assert tv["trade_count"] == 3 and tv["wins"] == 2
    assert tv["win_rate"] == pytest.approx(2 / 3)
    assert tv["pnl"] == pytest.approx(75.0)
    assert tv["avg_win"] == pytest.approx(37.5) and tv["avg_loss"] is None
    assert tv["profit_factor"] is None  # no loss in that group
    assert tv["expectancy_usd"] == pytest.approx(25.0)
    assert tv["expectancy_r"] == pytest.approx(1.0)
    by_analyst = breakdown(TRADES, lambda t: t.analyst)
    assert by_analyst["rules"]["trade_count"] == 3 and by_analyst["claude"]["trade_count"] == 1
    assert by_analyst["rules"]["profit_factor"] == pytest.approx(2.5)
    assert by_analyst["rules"]["avg_loss"] == pytest.approx(-30.0)
    by_symbol = breakdown(TRADES, lambda t: t.symbol)
    assert set(by_symbol) == {"BTC-PERP", "ETH-PERP"} and by_symbol["ETH-PERP"]["trade_count"] == 1
    assert breakdown([], lambda t: t.symbol) == {}


def test_equity_from_trades() -> None:
    trades = [
        trade(-30.0, at(1, 6), at(2, 0)),
        trade(60.0, at(1, 0), at(1, 12)),
        trade(10.0, at(2, 0), at(2, 0) + timedelta(0)),  # closes with the first one: summed
    ]
    curve = equity_from_trades(trades, 1000.0)
    assert list(curve.index) == [
        pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        pd.Timestamp("2024-01-01 12:00", tz="UTC"),
        pd.Timestamp("2024-01-02 00:00", tz="UTC"),
    ]
    assert curve.tolist() == [1000.0, 1060.0, 1040.0]
    assert curve.index.is_monotonic_increasing
    m = compute_metrics(curve, trades, starting_equity=1000.0)
    assert m.total_return == pytest.approx(0.04)
    assert m.max_drawdown == pytest.approx(1040 / 1060 - 1)
    empty = equity_from_trades([], 1000.0)
    assert empty.empty and isinstance(empty.index, pd.DatetimeIndex)


def test_drawdown_series() -> None:
    dd = drawdown_series(daily_equity([100.0, 120.0, 90.0, 130.0]))
    assert dd.tolist() == pytest.approx([0.0, 0.0, -0.25, 0.0])


@pytest.mark.skipif(not REAL_CANDLES.exists(), reason="real candles not available")
def test_buy_and_hold_on_the_real_month() -> None:
    candles = pd.read_csv(REAL_CANDLES)
    close = pd.Series(candles["close"].to_numpy(), index=pd.to_datetime(candles["timestamp"], utc=True))
    equity = 10_000.0 * close / close.iloc[0]
    hold = trade(equity.iloc[-1] - 10_000.0, close.index[0].to_pydatetime(), close.index[-1].to_pydatetime())
    m = compute_metrics(equity, [hold], starting_equity=10_000.0)
    assert m.total_return == pytest.approx(close.iloc[-1] / close.iloc[0] - 1)
    expected_dd = float((close / close.cummax() - 1).min())
    assert m.max_drawdown == pytest.approx(expected_dd)
    assert -1.0 < m.max_drawdown < -0.05  # BTC fell hard in January 2022
    assert m.sharpe is not None and math.isfinite(m.sharpe)
    assert m.sortino is not None and math.isfinite(m.sortino)
    assert m.exposure_time == pytest.approx(1.0)
    assert 25 * DAY < m.max_drawdown_duration_s <= (close.index[-1] - close.index[0]).total_seconds()
    json.dumps(m.as_dict(), allow_nan=False)

"""The report's breakdowns (agent.backtest.figures) and chart data (agent.backtest.chart_data), checked
against figures worked out by hand on a small list of trades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.analytics.performance import TradeRecord
from agent.backtest.chart_data import chart_timeframe, equity_chart_data, price_chart_data, resample
from agent.backtest.figures import market_change, report_figures, week_of
from agent.backtest.report_sections import duration, readable

T0 = datetime(2022, 1, 1, 10, 0, tzinfo=UTC)  # a Saturday: ISO week 2021-W52


def trade(symbol: str, side: str, pnl: float, opened_h: float, held_min: float, reason: str) -> TradeRecord:
    opened = T0 + timedelta(hours=opened_h)
    return TradeRecord(
        symbol, side, 0.1, 100.0, 101.0, pnl, 0.1, opened, opened + timedelta(minutes=held_min), reason,
        "internal:ema_cross", "rules", pnl / 10.0, 10.0,
    )  # fmt: skip


# closes: #1 Sat 2022-01-01 11:00, #2 Sat 2022-01-01 16:30, #3 Mon 2022-01-03 12:00,
# #4 Mon 2022-01-31 09:15, #5 Tue 2022-02-01 00:20
TRADES = [
    trade("BTC-PERP", "BUY", 30.0, 0, 60, "take_profit"),
    trade("BTC-PERP", "SELL", -10.0, 6, 30, "stop_loss"),
    trade("ETH-PERP", "BUY", 5.0, 48, 120, "take_profit"),
    trade("BTC-PERP", "SELL", -20.0, 718, 75, "stop_loss"),
    trade("ETH-PERP", "BUY", 0.0, 734, 20, "signal_reversal"),
]


def test_per_exit_reason_sums() -> None:
    exits = report_figures(TRADES)["by_exit_reason"]
    assert list(exits) == ["signal_reversal", "stop_loss", "take_profit"]
    assert exits["take_profit"]["trade_count"] == 2 and exits["take_profit"]["pnl"] == 35.0
    assert exits["take_profit"]["win_rate"] == 1.0 and exits["take_profit"]["avg_win"] == 17.5
    assert exits["stop_loss"]["pnl"] == -30.0 and exits["stop_loss"]["avg_loss"] == -15.0
    assert exits["stop_loss"]["win_rate"] == 0.0 and exits["stop_loss"]["expectancy_r"] == -1.5
    assert exits["signal_reversal"] == pytest.approx(
        {**exits["signal_reversal"], "trade_count": 1, "pnl": 0.0}
    )


def test_per_market_and_side() -> None:
    figures = report_figures(TRADES)
    assert (
        figures["by_market"]["BTC-PERP"]["pnl"] == 0.0
        and figures["by_market"]["BTC-PERP"]["trade_count"] == 3
    )
    assert figures["by_market"]["ETH-PERP"]["pnl"] == 5.0
    sides = figures["by_side"]
    assert sides["long"]["trade_count"] == 3 and sides["long"]["pnl"] == 35.0
    assert sides["short"]["trade_count"] == 2 and sides["short"]["pnl"] == -30.0
    assert sides["short"]["profit_factor"] == 0.0  # two losses, no win
    assert sides["long"]["profit_factor"] is None  # no loss to divide by


def test_best_worst_and_durations() -> None:
    figures = report_figures(TRADES)
    best, worst = figures["best_trade"], figures["worst_trade"]
    assert best["pnl"] == 30.0 and best["side"] == "long" and best["exit_reason"] == "take_profit"
    assert best["opened_at"] == "2022-01-01T10:00:00+00:00" and best["duration_s"] == 3600.0
    assert (
        worst["pnl"] == -20.0
        and worst["side"] == "short"
        and worst["closed_at"] == "2022-01-31T09:15:00+00:00"
    )
    held = figures["duration_s"]
    assert held["all"] == (60 + 30 + 120 + 75 + 20) * 60 / 5  # 61 minutes
    assert held["winners"] == (60 + 120) * 60 / 2
    assert held["losers"] == (30 + 75) * 60 / 2  # the break-even trade is neither
    assert duration(held["all"]) == "1h 01m" and duration(3 * 86_400 + 125 * 60) == "3d 2h 05m"


def test_day_week_month_buckets_by_close() -> None:
    figures = report_figures(TRADES)
    days = figures["by_day"]
    assert list(days) == ["2022-01-01", "2022-01-03", "2022-01-31", "2022-02-01"]
    assert days["2022-01-01"]["trade_count"] == 2 and days["2022-01-01"]["pnl"] == 20.0
    weeks = figures["by_week"]  # ISO weeks: Jan 1st 2022 is in 2021's last week
    assert {w: s["pnl"] for w, s in weeks.items()} == {"2021-W52": 20.0, "2022-W01": 5.0, "2022-W05": -20.0}
    assert weeks["2022-W05"]["trade_count"] == 2
    months = figures["by_month"]  # #5 opened in January and closed in February: February's
    assert {m: (s["trade_count"], s["pnl"]) for m, s in months.items()} == {
        "2022-01": (4, 5.0),
        "2022-02": (1, 0.0),
    }


def test_market_change_first_open_to_last_close() -> None:
    index = pd.date_range("2022-01-01", periods=3, freq="1min", tz="UTC")
    btc = pd.DataFrame({"open": [100.0, 99, 98], "high": 1.0, "low": 1.0, "close": [99.0, 98, 110], "volume": 1.0},
                       index=index)  # fmt: skip
    changes = market_change({"BTC-PERP": btc, "ETH-PERP": btc.iloc[:0]})
    assert changes == {"BTC-PERP": {"first_open": 100.0, "last_close": 110.0, "change": pytest.approx(0.10)}}
    figures = report_figures([], {"BTC-PERP": btc})
    assert figures["best_trade"] is None and figures["duration_s"] == {
        "all": None,
        "winners": None,
        "losers": None,
    }
    assert figures["by_day"] == {} and figures["market_change"]["BTC-PERP"]["change"] == pytest.approx(0.10)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-500, 500, allow_nan=False), st.integers(0, 60 * 24 * 90)), min_size=1,
                max_size=30))  # fmt: skip
def test_every_bucketing_adds_up_to_the_total(rows: list[tuple[float, int]]) -> None:
    trades = [trade("BTC-PERP", "BUY" if i % 2 else "SELL", pnl, minute / 60, 5, "x") for i, (pnl, minute)
              in enumerate(rows)]  # fmt: skip
    figures = report_figures(trades)
    total = sum(t.pnl for t in trades)
    for key in ("by_day", "by_week", "by_month", "by_side", "by_market", "by_exit_reason"):
        groups = figures[key].values()
        assert sum(g["trade_count"] for g in groups) == len(trades)
        assert sum(g["pnl"] for g in groups) == pytest.approx(total, abs=1e-6)
    assert figures["best_trade"]["pnl"] == max(t.pnl for t in trades)
    assert all(week_of(t)[:4] in ("2021", "2022") for t in trades)


def month_of_candles() -> pd.DataFrame:
    index = pd.date_range("2022-01-01", periods=31 * 1440, freq="1min", tz="UTC")
    close = 40_000.0 + np.cumsum(np.sin(np.arange(len(index)) / 500.0))
    return pd.DataFrame({"open": close - 1, "high": close + 2, "low": close - 3, "close": close, "volume": 2.0},
                        index=index)  # fmt: skip


def test_a_month_of_1m_candles_is_drawn_as_15m() -> None:
    candles = month_of_candles()
    assert chart_timeframe(candles, 60) == ("15m", 900)
    folded = resample(candles.iloc[:30], 900)
    assert len(folded) == 2 and folded["volume"].tolist() == [30.0, 30.0]
    assert (
        folded["open"].iloc[0] == candles["open"].iloc[0]
        and folded["close"].iloc[0] == candles["close"].iloc[14]
    )
    assert folded["high"].iloc[1] == candles["high"].iloc[15:30].max()
    opened = datetime(2022, 1, 2, 3, 7, 30, tzinfo=UTC)
    trades = [TradeRecord("BTC-PERP", "SELL", 1.0, 1.0, 2.0, -1.0, 0.0, opened, opened + timedelta(minutes=40),
                          "stop_loss"), TradeRecord("ETH-PERP", "BUY", 1.0, 1.0, 2.0, 1.0, 0.0, opened,
                          opened, "x")]  # fmt: skip
    chart = price_chart_data("BTC-PERP", candles, 60, trades)
    assert chart["timeframe"] == "15m" and len(chart["time"]) == 31 * 96
    assert chart["time"][1] - chart["time"][0] == 900
    entry, exit_ = chart["markers"]  # only the market's own trades
    assert (
        entry["time"] == int(datetime(2022, 1, 2, 3, 0, tzinfo=UTC).timestamp())
        and entry["shape"] == "arrowDown"
    )
    assert (
        exit_["time"] == int(datetime(2022, 1, 2, 3, 45, tzinfo=UTC).timestamp())
        and exit_["color"] == "#dc2626"
    )
    ema = chart["lines"]["ema_20"]
    assert ema[0] is None and ema[19] is not None  # warm-up left out, not drawn as zeros
    assert chart["close"][0] == pytest.approx(candles["close"].iloc[14], rel=1e-7)  # 8 significant digits


def test_equity_points_are_thinned_and_strictly_increasing() -> None:
    index = pd.date_range("2022-01-01", periods=10_000, freq="1min", tz="UTC")
    values = np.full(10_000, 1_000.0)
    values[4_321] = 500.0  # the deepest drawdown, off the sampling grid
    chart = equity_chart_data(pd.Series(values, index=index))
    assert len(chart["time"]) <= 3_002 and min(chart["drawdown"]) == -50.0
    assert all(b > a for a, b in zip(chart["time"], chart["time"][1:], strict=False))


def test_settings_values_read_as_text() -> None:
    assert readable(None) == "—" and readable(True) == "yes" and readable(["a", "b"]) == "a, b"
    assert readable(0.1 + 0.2) == "0.3" and readable({}) == "—" and readable("") == "—"

"""The breakdowns of a backtest report (report.json's ``breakdowns``, report.html's tables); pure functions.

- ``by_market``, ``by_exit_reason``, ``by_side`` (``long`` / ``short``), ``by_day``, ``by_week``,
  ``by_month``: per group, the statistics of ``agent.analytics.performance.breakdown`` (trade_count, wins,
  win_rate, pnl, avg_win, avg_loss, profit_factor, expectancy_usd, expectancy_r, r_total). A trade belongs
  to the UTC day, ISO week (``2022-W01``) and month (``2022-01``) it CLOSED in, which is when its pnl was
  realised.
- ``market_change``: per market, the first candle's open, the last candle's close and the change between
  them as a fraction (``change``: 0.05 = +5 %) over the candles given (the report's period).
- ``best_trade`` / ``worst_trade``: the trade of the highest / lowest pnl (the first of equal ones, in the
  order given), with its market, side, times, prices, pnl, R and exit reason; None without trades.
- ``duration_s``: the mean time from open to close of ``all`` trades, of the ``winners`` (pnl > 0) and of
  the ``losers`` (pnl < 0), in seconds; None where there is nothing to average.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from agent.analytics.performance import TradeRecord, as_utc, breakdown

LONG, SHORT = "long", "short"


def side_name(trade: TradeRecord) -> str:
    return LONG if trade.side.upper() == "BUY" else SHORT


def day_of(trade: TradeRecord) -> str:
    return str(as_utc(trade.closed_at).strftime("%Y-%m-%d"))


def week_of(trade: TradeRecord) -> str:
    year, week, _ = as_utc(trade.closed_at).isocalendar()
    return f"{year}-W{week:02d}"


def month_of(trade: TradeRecord) -> str:
    return str(as_utc(trade.closed_at).strftime("%Y-%m"))


def _seconds(trade: TradeRecord) -> float:
    return float((as_utc(trade.closed_at) - as_utc(trade.opened_at)).total_seconds())


def _mean_duration(trades: Sequence[TradeRecord]) -> float | None:
    return sum(_seconds(t) for t in trades) / len(trades) if trades else None


def durations(trades: Sequence[TradeRecord]) -> dict[str, float | None]:
    return {
        "all": _mean_duration(trades),
        "winners": _mean_duration([t for t in trades if t.pnl > 0]),
        "losers": _mean_duration([t for t in trades if t.pnl < 0]),
    }


def trade_summary(trade: TradeRecord | None) -> dict[str, Any] | None:
    if trade is None:
        return None
    return {
        "symbol": trade.symbol, "side": side_name(trade), "pnl": float(trade.pnl),
        "r_multiple": trade.r_multiple, "entry_price": float(trade.entry_price),
        "exit_price": float(trade.exit_price), "opened_at": as_utc(trade.opened_at).isoformat(),
        "closed_at": as_utc(trade.closed_at).isoformat(), "duration_s": _seconds(trade),
        "exit_reason": trade.exit_reason,
    }  # fmt: skip


def best_and_worst(trades: Sequence[TradeRecord]) -> tuple[TradeRecord | None, TradeRecord | None]:
    if not trades:
        return None, None
    best = max(trades, key=lambda t: t.pnl)  # max/min keep the first of equal pnl
    worst = min(trades, key=lambda t: t.pnl)
    return best, worst


def market_change(candles: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, float | None]]:
    """First open → last close of each market's candles (``open`` and ``close`` columns, in time order)."""
    result: dict[str, dict[str, float | None]] = {}
    for symbol, frame in candles.items():
        if not len(frame):
            continue
        first, last = float(frame["open"].iloc[0]), float(frame["close"].iloc[-1])
        change = last / first - 1.0 if first > 0 else None
        result[symbol] = {"first_open": first, "last_close": last, "change": change}
    return result


def report_figures(
    trades: Sequence[TradeRecord], candles: Mapping[str, pd.DataFrame] | None = None
) -> dict[str, Any]:
    """Every breakdown of the module docstring (report.json's ``breakdowns``)."""
    best, worst = best_and_worst(trades)
    return {
        "by_market": breakdown(trades, lambda t: t.symbol or "unknown"),
        "by_exit_reason": breakdown(trades, lambda t: t.exit_reason or "unknown"),
        "by_side": breakdown(trades, side_name),
        "by_day": breakdown(trades, day_of),
        "by_week": breakdown(trades, week_of),
        "by_month": breakdown(trades, month_of),
        "market_change": market_change(candles or {}),
        "best_trade": trade_summary(best),
        "worst_trade": trade_summary(worst),
        "duration_s": durations(trades),
    }

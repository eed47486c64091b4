"""Performance analytics for backtests, paper and live trading: pure functions, no I/O, no database.

``compute_metrics`` turns an equity curve and the closed trades into :class:`PerformanceMetrics`;
``breakdown`` groups trades (per symbol, signal source, analyst, ...); ``equity_from_trades`` rebuilds an
equity curve when only a journal of trades exists; ``drawdown_series`` gives the drawdown curve for charts.

Conventions
-----------
- Equity is account equity in USD sampled over time on an increasing UTC DatetimeIndex (a naive index is
  taken as UTC); NaN points are ignored. It may be empty or hold a single point.
- total_return = final / starting_equity - 1, final being the last equity point (starting_equity when the
  series is empty).
- CAGR = (final / starting_equity) ** (365.25 days / span) - 1, span being the time from the first to the
  last equity point; None if the span is shorter than 1 day; -1.0 if the final equity is <= 0.
- max_drawdown is the most negative (equity / running peak - 1): a NEGATIVE fraction, e.g. -0.12, and 0.0
  if the equity never falls below an earlier peak. max_drawdown_duration_s is the longest time from a peak
  to the first point back at or above that peak; an unrecovered drawdown lasts until the last point.
- Sharpe and Sortino use DAILY returns. The equity is sampled at each UTC day end (00:00 UTC): the value
  there is the last point at or before that instant, a day without points keeps the previous value, and
  the last (possibly partial) day ends at the last point. The first point is the starting value, so the
  first return runs from the first point to the first day end. Returns are the pct_change of that series,
  risk-free rate 0, annualised with sqrt(365) (crypto trades every day).
  Sharpe = mean / std(ddof=1) * sqrt(365); None with fewer than 2 daily returns or a zero deviation.
  Sortino = mean / downside deviation * sqrt(365), downside deviation = sqrt(mean(min(r, 0)^2)) over ALL
  daily returns; None with fewer than 2 daily returns or no negative return.
- A win is pnl > 0 and a loss pnl < 0; pnl == 0 is neither but counts in trade_count and in win_rate's
  denominator (win_rate = wins / trade_count). avg_win and avg_loss are the mean pnl of the wins and of
  the losses (avg_loss is negative); gross_profit is the sum of the wins, gross_loss the (negative) sum
  of the losses; profit_factor = gross_profit / |gross_loss|, None with no losing trade;
  expectancy_usd = mean pnl per trade; expectancy_r = mean r_multiple over the trades that have one;
  r_total = total pnl / total initial risk over the trades with an initial risk (what the positions made
  in units of what they risked: a big loss on a big risk weighs more than in the mean of R).
- A trade is a position, from open to flat (``agent.execution.booking``): a partial take-profit is a leg of
  its position's trade, so win rate, expectancy and Kelly's inputs count positions, not fills. Its pnl is
  everything that moved the account while it was open: price PnL - fees + funding - forfeited margin.
  Trade statistics are None when there is nothing to average (no trades, no wins, no losses).
- exposure_time = the time covered by the union of the trades' [opened_at, closed_at] intervals, clipped to
  the equity series' span, divided by that span; None when the span is zero (empty or one-point equity).
- fees_paid and funding_paid are reported as given (account-level totals, e.g. from the ledger); trade pnl
  is already net of its fees and funding, and of the margin a liquidation forfeited.
- by_exit_reason, by_signal_source and by_symbol group trades by their exit_reason / signal_source /
  market ("unknown" when empty).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400.0
DAYS_PER_YEAR_CAGR = 365.25
TRADING_DAYS_PER_YEAR = 365
UNKNOWN = "unknown"
_ZERO_STD = 1e-15


@dataclass(frozen=True)
class TradeRecord:
    """One closed trade: a position from open to flat, with its fills in ``legs``."""

    symbol: str
    side: str  # "BUY" = it was a long, "SELL" = a short
    quantity: float
    entry_price: float
    exit_price: float
    pnl: float  # price PnL - every fee + funding - forfeited margin, in USD
    fees: float
    opened_at: datetime  # UTC-aware
    closed_at: datetime  # UTC-aware
    exit_reason: str
    signal_source: str = ""  # e.g. "tradingview", "internal:ema_cross"
    analyst: str = ""  # e.g. "rules", "claude"
    r_multiple: float | None = None  # pnl / initial risk, None when the risk was unknown
    initial_risk: float | None = None  # USD lost at the initial stop
    funding: float = 0.0  # received (+) or paid (-) while open, in pnl
    forfeited: float = 0.0  # margin a liquidation gave to the insurance fund, out of pnl
    legs: tuple[dict[str, Any], ...] = ()  # every fill of the position (agent.execution.booking)


@dataclass(frozen=True)
class PerformanceMetrics:
    """Summary of one equity curve and its trades; see the module docstring for the conventions."""

    starting_equity: float
    final_equity: float
    total_return: float
    cagr: float | None
    max_drawdown: float
    max_drawdown_duration_s: float
    sharpe: float | None
    sortino: float | None
    exposure_time: float | None
    trade_count: int
    wins: int
    losses: int
    win_rate: float | None
    avg_win: float | None
    avg_loss: float | None
    gross_profit: float
    gross_loss: float
    profit_factor: float | None
    expectancy_usd: float | None
    expectancy_r: float | None
    r_total: float | None
    best_trade: float | None
    worst_trade: float | None
    avg_trade_duration_s: float | None
    fees_paid: float
    funding_paid: float
    start: str | None
    end: str | None
    by_exit_reason: dict[str, int]
    by_signal_source: dict[str, dict[str, Any]]
    by_symbol: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: NaN and infinities become None."""
        result: dict[str, Any] = _json_safe(asdict(self))
        return result


def as_utc(moment: datetime | pd.Timestamp) -> pd.Timestamp:
    """``moment`` as a UTC-aware Timestamp (a naive one is taken as UTC)."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def compute_metrics(
    equity: pd.Series,
    trades: Sequence[TradeRecord],
    *,
    starting_equity: float,
    fees_paid: float = 0.0,
    funding_paid: float = 0.0,
) -> PerformanceMetrics:
    """Compute the performance of ``equity`` (account equity over time) and its closed ``trades``."""
    if not math.isfinite(starting_equity) or starting_equity <= 0:
        raise ValueError(f"starting_equity must be a positive number, got {starting_equity!r}")
    curve = _clean_equity(equity)
    values = curve.to_numpy(dtype=float)
    final = float(values[-1]) if len(values) else float(starting_equity)
    span_s = _span_seconds(curve)
    max_dd, max_dd_duration = _drawdown_stats(values, _seconds_since_start(curve))
    daily = _daily_returns(curve)
    stats = _trade_stats(trades)
    return PerformanceMetrics(
        starting_equity=float(starting_equity),
        final_equity=final,
        total_return=final / starting_equity - 1.0,
        cagr=_cagr(final, starting_equity, span_s),
        max_drawdown=max_dd,
        max_drawdown_duration_s=max_dd_duration,
        sharpe=_sharpe(daily),
        sortino=_sortino(daily),
        exposure_time=_exposure(trades, curve),
        trade_count=stats["trade_count"],
        wins=stats["wins"],
        losses=stats["losses"],
        win_rate=stats["win_rate"],
        avg_win=stats["avg_win"],
        avg_loss=stats["avg_loss"],
        gross_profit=stats["gross_profit"],
        gross_loss=stats["gross_loss"],
        profit_factor=stats["profit_factor"],
        expectancy_usd=stats["expectancy_usd"],
        expectancy_r=stats["expectancy_r"],
        r_total=stats["r_total"],
        best_trade=stats["best_trade"],
        worst_trade=stats["worst_trade"],
        avg_trade_duration_s=_avg_duration(trades),
        fees_paid=float(fees_paid),
        funding_paid=float(funding_paid),
        start=curve.index[0].isoformat() if len(curve) else None,
        end=curve.index[-1].isoformat() if len(curve) else None,
        by_exit_reason=_count_by(trades, lambda t: t.exit_reason or UNKNOWN),
        by_signal_source=_summary_by(trades, lambda t: t.signal_source or UNKNOWN),
        by_symbol=_summary_by(trades, lambda t: t.symbol or UNKNOWN),
    )


def breakdown(trades: Sequence[TradeRecord], key: Callable[[TradeRecord], str]) -> dict[str, dict[str, Any]]:
    """Trade statistics per group (sorted by group name): trade_count, wins, win_rate, pnl, avg_win,
    avg_loss, profit_factor, expectancy_usd, expectancy_r.

    ``key`` names the group of a trade, e.g. ``lambda t: t.symbol``, ``lambda t: t.analyst``.
    """
    groups: dict[str, list[TradeRecord]] = {}
    for trade in trades:
        groups.setdefault(key(trade), []).append(trade)
    return {name: _group_stats(groups[name]) for name in sorted(groups)}


def with_llm_cost(
    groups: Mapping[str, Mapping[str, Any]], costs: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    """Each group's statistics (``breakdown``) plus ``pnl_gross`` (its pnl), ``llm_cost_usd`` (``costs`` of
    that group, 0 when absent) and ``pnl_net_of_llm_cost``; a group that only cost (an analyst that
    decided but never traded) appears with no trades."""
    result: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys([*groups, *costs]):
        stats = dict(groups.get(name, {"trade_count": 0, "pnl": 0.0}))
        cost = float(costs.get(name, 0.0))
        gross = float(stats.get("pnl") or 0.0)
        result[name] = {
            **stats,
            "pnl_gross": gross,
            "llm_cost_usd": cost,
            "pnl_net_of_llm_cost": gross - cost,
        }
    return result


def equity_from_trades(trades: Sequence[TradeRecord], starting_equity: float) -> pd.Series:
    """Equity stepping at each trade's closed_at by its pnl, starting at the first opened_at.

    Trades closing at the same instant are summed into one point. Empty when there are no trades.
    """
    if not trades:
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float, name="equity")
    closes = pd.to_datetime([as_utc(t.closed_at) for t in trades], utc=True)
    pnl = pd.Series([float(t.pnl) for t in trades], index=closes).groupby(level=0).sum().sort_index()
    curve = float(starting_equity) + pnl.cumsum()
    start = min(as_utc(t.opened_at) for t in trades)
    if curve.index[0] > start:
        first = pd.Series([float(starting_equity)], index=pd.DatetimeIndex([start]).as_unit(curve.index.unit))
        curve = pd.concat([first, curve])
    curve.name = "equity"
    return curve.astype(float)


def drawdown_series(equity: pd.Series) -> pd.Series:
    """Drawdown of ``equity`` at each point: equity / running peak - 1 (<= 0)."""
    curve = _clean_equity(equity)
    values = curve.to_numpy(dtype=float)
    return pd.Series(_drawdowns(values), index=curve.index, name="drawdown")


# ---------------------------------------------------------------------------------------------- equity


def _clean_equity(equity: pd.Series) -> pd.Series:
    """The equity as float on a UTC DatetimeIndex, NaN points dropped; rejects an unsorted index."""
    if not isinstance(equity.index, pd.DatetimeIndex):
        raise TypeError("equity must be indexed by a DatetimeIndex")
    index = equity.index.tz_localize("UTC") if equity.index.tz is None else equity.index.tz_convert("UTC")
    if not index.is_monotonic_increasing:
        raise ValueError("equity index must be increasing")
    curve = pd.Series(equity.to_numpy(dtype=float), index=index, name="equity")
    return curve[~np.isnan(curve.to_numpy())]


def _seconds_since_start(curve: pd.Series) -> np.ndarray:
    if not len(curve):
        return np.zeros(0)
    return np.asarray((curve.index - curve.index[0]).total_seconds(), dtype=float)


def _span_seconds(curve: pd.Series) -> float:
    return float((curve.index[-1] - curve.index[0]).total_seconds()) if len(curve) else 0.0


def _cagr(final: float, starting: float, span_s: float) -> float | None:
    if span_s < SECONDS_PER_DAY:
        return None
    if final <= 0:
        return -1.0
    years = span_s / (DAYS_PER_YEAR_CAGR * SECONDS_PER_DAY)
    try:
        return float((final / starting) ** (1.0 / years) - 1.0)
    except OverflowError:
        return None


def _drawdowns(values: np.ndarray) -> np.ndarray:
    if not len(values):
        return np.zeros(0)
    peak = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, values / np.where(peak > 0, peak, 1.0) - 1.0, 0.0)
    return np.minimum(dd, 0.0)


def _drawdown_stats(values: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """(max drawdown as a negative fraction, longest peak-to-recovery time in seconds)."""
    if len(values) < 2:
        return 0.0, 0.0
    worst = float(_drawdowns(values).min())
    peak = np.maximum.accumulate(values)
    at_peak = values >= peak
    positions = np.arange(len(values))
    last_peak_time = seconds[np.maximum.accumulate(np.where(at_peak, positions, 0))]
    underwater = ~at_peak
    recovered = at_peak & np.concatenate(([False], underwater[:-1]))
    previous_peak_time = np.concatenate(([seconds[0]], last_peak_time[:-1]))
    lengths = np.where(underwater, seconds - last_peak_time, 0.0)
    lengths = np.maximum(lengths, np.where(recovered, seconds - previous_peak_time, 0.0))
    return (worst if worst < 0 else 0.0), float(lengths.max())


def _daily_values(curve: pd.Series) -> np.ndarray:
    """The first point, then the equity at each UTC day end after it (see the module docstring)."""
    if not len(curve):
        return np.zeros(0)
    day_ends = curve.groupby(curve.index.ceil("D")).last()
    every_day = pd.date_range(day_ends.index[0], day_ends.index[-1], freq="D")
    day_ends = day_ends.reindex(every_day).ffill()
    values = day_ends.to_numpy(dtype=float)
    if day_ends.index[0] > curve.index[0]:
        values = np.concatenate(([float(curve.iloc[0])], values))
    return np.asarray(values, dtype=float)


def _daily_returns(curve: pd.Series) -> np.ndarray:
    values = _daily_values(curve)
    if len(values) < 2:
        return np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = values[1:] / values[:-1] - 1.0
    return np.asarray(returns[np.isfinite(returns)], dtype=float)


def _sharpe(returns: np.ndarray) -> float | None:
    if len(returns) < 2:
        return None
    std = float(np.std(returns, ddof=1))
    if std <= _ZERO_STD:
        return None
    return float(np.mean(returns)) / std * math.sqrt(TRADING_DAYS_PER_YEAR)


def _sortino(returns: np.ndarray) -> float | None:
    if len(returns) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside <= _ZERO_STD:
        return None
    return float(np.mean(returns)) / downside * math.sqrt(TRADING_DAYS_PER_YEAR)


# ---------------------------------------------------------------------------------------------- trades


def _exposure(trades: Sequence[TradeRecord], curve: pd.Series) -> float | None:
    """Fraction of the equity span covered by the union of the trades' open intervals."""
    span = _span_seconds(curve)
    if span <= 0:
        return None
    if not trades:
        return 0.0
    start = curve.index[0]
    opens = _offsets([t.opened_at for t in trades], start, span)
    closes = _offsets([t.closed_at for t in trades], start, span)
    order = np.argsort(opens, kind="stable")
    opens, closes = opens[order], np.maximum(closes[order], opens[order])
    running_end = np.maximum.accumulate(closes)
    new_group = np.concatenate(([True], opens[1:] > running_end[:-1]))
    firsts = np.flatnonzero(new_group)
    covered = float(np.sum(np.maximum.reduceat(closes, firsts) - opens[firsts]))
    return min(covered / span, 1.0)


def _offsets(moments: list[datetime], start: pd.Timestamp, span: float) -> np.ndarray:
    """Seconds from ``start``, clipped to [0, span]."""
    stamps = pd.to_datetime([as_utc(m) for m in moments], utc=True)
    return np.asarray(np.clip(np.asarray((stamps - start).total_seconds(), dtype=float), 0.0, span))


def _avg_duration(trades: Sequence[TradeRecord]) -> float | None:
    if not trades:
        return None
    total = sum((as_utc(t.closed_at) - as_utc(t.opened_at)).total_seconds() for t in trades)
    return float(total) / len(trades)


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _trade_stats(trades: Sequence[TradeRecord]) -> dict[str, Any]:
    """Win/loss statistics of ``trades`` (see the module docstring)."""
    pnl = np.fromiter((float(t.pnl) for t in trades), dtype=float, count=len(trades))
    r_values = np.array([float(t.r_multiple) for t in trades if t.r_multiple is not None], dtype=float)
    risked = [t for t in trades if t.initial_risk]
    total_risk = sum(float(t.initial_risk or 0.0) for t in risked)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_profit, gross_loss = float(wins.sum()), float(losses.sum())
    return {
        "trade_count": len(pnl),
        "wins": len(wins),
        "losses": len(losses),
        "win_rate": len(wins) / len(pnl) if len(pnl) else None,
        "pnl": float(pnl.sum()),
        "avg_win": _mean(wins),
        "avg_loss": _mean(losses),
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "profit_factor": gross_profit / -gross_loss if len(losses) and gross_loss < 0 else None,
        "expectancy_usd": _mean(pnl),
        "expectancy_r": _mean(r_values),
        "r_total": sum(float(t.pnl) for t in risked) / total_risk if total_risk > 0 else None,
        "best_trade": float(pnl.max()) if len(pnl) else None,
        "worst_trade": float(pnl.min()) if len(pnl) else None,
    }


_GROUP_FIELDS = (
    "trade_count",
    "wins",
    "win_rate",
    "pnl",
    "avg_win",
    "avg_loss",
    "profit_factor",
    "expectancy_usd",
    "expectancy_r",
    "r_total",
)
_SOURCE_FIELDS = ("trade_count", "win_rate", "pnl", "expectancy_r")


def _group_stats(trades: Sequence[TradeRecord]) -> dict[str, Any]:
    stats = _trade_stats(trades)
    return {name: stats[name] for name in _GROUP_FIELDS}


def _summary_by(
    trades: Sequence[TradeRecord], key: Callable[[TradeRecord], str]
) -> dict[str, dict[str, Any]]:
    """Trade count, win rate, pnl and expectancy (R) per group."""
    groups = breakdown(trades, key)
    return {group: {name: stats[name] for name in _SOURCE_FIELDS} for group, stats in groups.items()}


def _count_by(trades: Sequence[TradeRecord], key: Callable[[TradeRecord], str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trade in trades:
        counts[key(trade)] = counts.get(key(trade), 0) + 1
    return dict(sorted(counts.items()))


def _json_safe(value: Any) -> Any:
    """``value`` with NaN/inf replaced by None and numpy scalars turned into Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

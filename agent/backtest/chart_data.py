"""The data behind report.html's interactive charts, embedded in the page as JSON.

``price_chart_data``: one market's candles resampled to the finest timeframe that keeps at most
``MAX_CHART_CANDLES`` of them (a month of 1m candles becomes 15m candles), with the strategy's lines (EMA 20
and 50, the Bollinger bands of ``shared.indicators``, computed on the chart's candles) and the trades of that
market as markers on the candle their entry or exit falls in. ``equity_chart_data``: the equity curve and
its drawdown (in %), every k-th point for at most ``MAX_CHART_POINTS`` and the deepest drawdown kept.
Times are epoch seconds (what lightweight-charts takes); values are rounded floats, NaN left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from agent.analytics.performance import TradeRecord, as_utc, drawdown_series
from shared import indicators

MAX_CHART_CANDLES = 3_000
MAX_CHART_POINTS = 3_000
TIMEFRAMES = (("1m", 60), ("5m", 300), ("15m", 900), ("1h", 3_600), ("4h", 14_400), ("1d", 86_400))
LINES = ("ema_20", "ema_50", "bb_upper", "bb_mid", "bb_lower")
_DIGITS = 8


def _round(value: float) -> float:
    return float(f"{value:.{_DIGITS}g}")


def chart_timeframe(candles: pd.DataFrame, base_s: int) -> tuple[str, int]:
    """The finest timeframe at least ``base_s`` long that gives at most MAX_CHART_CANDLES candles."""
    if not len(candles):
        return next((n, s) for n, s in TIMEFRAMES if s >= base_s)
    span = float((candles.index[-1] - candles.index[0]).total_seconds()) + base_s
    for name, seconds in TIMEFRAMES:
        if seconds >= base_s and math.ceil(span / seconds) <= MAX_CHART_CANDLES:
            return name, seconds
    return TIMEFRAMES[-1]


def resample(candles: pd.DataFrame, seconds: int) -> pd.DataFrame:
    """OHLCV candles folded into ``seconds`` buckets on UTC boundaries (empty buckets dropped)."""
    rule = f"{seconds}s"
    grouped = candles.resample(rule, label="left", closed="left")
    frame = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
        }
    )
    return frame.dropna(subset=["open", "close"])


def _epochs(index: pd.Index) -> list[int]:
    utc = pd.DatetimeIndex(index)
    utc = utc.tz_localize("UTC") if utc.tz is None else utc.tz_convert("UTC")
    return [int(v) for v in utc.as_unit("s").asi8]


def _values(values: np.ndarray) -> list[float | None]:
    return [_round(float(v)) if np.isfinite(v) else None for v in values]


def _markers(trades: Sequence[TradeRecord], seconds: int) -> list[dict[str, Any]]:
    """Entries (arrow up for a long, down for a short) and exits (a circle, green when it made money)."""
    markers = []
    for number, trade in enumerate(trades, 1):
        long = trade.side.upper() == "BUY"
        opened = int(as_utc(trade.opened_at).timestamp()) // seconds * seconds
        closed = int(as_utc(trade.closed_at).timestamp()) // seconds * seconds
        side = "long" if long else "short"
        markers.append(
            {"time": opened, "position": "belowBar" if long else "aboveBar",
             "shape": "arrowUp" if long else "arrowDown", "color": "#16a34a" if long else "#dc2626",
             "text": f"#{number} {side}", "kind": "entry", "price": _round(trade.entry_price)}
        )  # fmt: skip
        markers.append(
            {"time": closed, "position": "aboveBar" if long else "belowBar", "shape": "circle",
             "color": "#16a34a" if trade.pnl > 0 else "#dc2626", "text": f"#{number} {trade.exit_reason}",
             "kind": "exit", "price": _round(trade.exit_price)}
        )  # fmt: skip
    markers.sort(key=lambda m: (m["time"], m["kind"] != "entry"))
    return markers


def price_chart_data(
    symbol: str, candles: pd.DataFrame, base_s: int, trades: Sequence[TradeRecord]
) -> dict[str, Any]:
    """The price chart's JSON, by column: ``symbol``, ``timeframe``, ``time`` (epoch seconds of each candle's
    open), ``open``, ``high``, ``low``, ``close``, ``volume``, ``lines`` (name -> one value or None per
    candle) and ``markers`` (the trades of ``symbol``)."""
    name, seconds = chart_timeframe(candles, base_s)
    frame = resample(candles, seconds) if seconds > base_s else candles
    ohlcv = frame[["open", "high", "low", "close", "volume"]].astype(float)
    computed = indicators.compute(ohlcv)
    columns = {column: _values(ohlcv[column].to_numpy()) for column in ohlcv.columns}
    return {
        "symbol": symbol,
        "timeframe": name,
        "time": _epochs(frame.index),
        **columns,
        "lines": {line: _values(computed[line].to_numpy(dtype=float)) for line in LINES},
        "markers": _markers([t for t in trades if t.symbol == symbol], seconds),
    }


def equity_chart_data(equity: pd.Series) -> dict[str, Any]:
    """The equity chart's JSON, by column: ``time``, ``equity`` and ``drawdown`` (% below the peak)."""
    curve = equity.dropna()
    drawdown = drawdown_series(curve) * 100.0
    n = len(curve)
    positions = np.arange(n)
    if n > MAX_CHART_POINTS:
        step = math.ceil(n / MAX_CHART_POINTS)
        deepest = int(np.argmin(drawdown.to_numpy()))
        positions = np.union1d(np.arange(0, n, step), np.array([n - 1, deepest], dtype=int))
    times = _epochs(curve.index[positions])
    # several points in one second keep the last: lightweight-charts needs strictly increasing times
    keep = [i for i in range(len(times)) if i + 1 == len(times) or times[i + 1] != times[i]]
    return {
        "time": [times[i] for i in keep],
        "equity": _values(curve.to_numpy(dtype=float)[positions][keep]),
        "drawdown": _values(drawdown.to_numpy(dtype=float)[positions][keep]),
    }

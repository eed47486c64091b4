"""Market structure on top of the indicators: support/resistance levels, trend and volatility regimes,
price/RSI divergences, anomaly flags, data gaps and cross-symbol correlation.

All functions take a candle frame (``open high low close volume``, UTC DatetimeIndex, optionally with the
columns of ``shared.indicators.compute``) and are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

PIVOT_BARS = 5
ADX_TRENDING = 25.0


@dataclass(frozen=True)
class Level:
    price: float
    kind: Literal["support", "resistance"]
    touches: int
    last_touch: datetime


@dataclass(frozen=True)
class Divergence:
    kind: Literal["bullish", "bearish"]
    first: datetime
    second: datetime
    price_change: float
    rsi_change: float


@dataclass(frozen=True)
class Gap:
    after: datetime
    missing_candles: int


def pivots(series: pd.Series, bars: int = PIVOT_BARS, highs: bool = True) -> pd.Series:
    """Values that are the extreme of the ``bars`` candles on each side (confirmed pivots only)."""
    window = 2 * bars + 1
    rolling = series.rolling(window, center=True, min_periods=window)
    extreme = rolling.max() if highs else rolling.min()
    return series[series == extreme]


def _pivot_positions(values: np.ndarray, bars: int, highs: bool) -> np.ndarray:
    """Positions of the values that are the extreme of the ``bars`` values on each side (as ``pivots``)."""
    window = 2 * bars + 1
    if len(values) < window:
        return np.empty(0, dtype=np.int64)
    windows = sliding_window_view(values, window)
    extreme = windows.max(axis=1) if highs else windows.min(axis=1)
    return np.flatnonzero(values[bars : len(values) - bars] == extreme) + bars


def support_resistance(
    candles: pd.DataFrame, tolerance: float = 0.003, bars: int = PIVOT_BARS, min_touches: int = 2
) -> list[Level]:
    """Swing pivots clustered into levels: pivots within ``tolerance`` (fraction of price) of a cluster's
    mean join it. Levels below the last close are support, above it resistance; sorted by price."""
    highs, lows = candles["high"].to_numpy(dtype=float), candles["low"].to_numpy(dtype=float)
    high_at, low_at = _pivot_positions(highs, bars, True), _pivot_positions(lows, bars, False)
    prices = np.concatenate([highs[high_at], lows[low_at]])
    stamps = np.concatenate([high_at, low_at])
    order = np.argsort(prices, kind="stable")
    times = pd.DatetimeIndex(candles.index[stamps[order]]).to_pydatetime()
    clusters: list[list[tuple[float, datetime]]] = []
    for price, time in zip(prices[order].tolist(), times, strict=True):
        if clusters and abs(price - np.mean([p for p, _ in clusters[-1]])) <= tolerance * price:
            clusters[-1].append((price, time))
        else:
            clusters.append([(price, time)])
    last = float(candles["close"].iloc[-1])
    levels = []
    for cluster in clusters:
        if len(cluster) < min_touches:
            continue
        price = float(np.mean([p for p, _ in cluster]))
        kind: Literal["support", "resistance"] = "support" if price <= last else "resistance"
        levels.append(Level(price, kind, len(cluster), max(t for _, t in cluster)))
    return levels


def trend_regime(row: pd.Series) -> Literal["trending_up", "trending_down", "ranging", "unknown"]:
    """From one row of ``compute`` output: ADX strength plus EMA alignment."""
    needed = ("adx", "ema_20", "ema_50", "plus_di", "minus_di")
    if any(pd.isna(row.get(k)) for k in needed):
        return "unknown"
    if row["adx"] >= ADX_TRENDING:
        if row["ema_20"] > row["ema_50"] and row["plus_di"] > row["minus_di"]:
            return "trending_up"
        if row["ema_20"] < row["ema_50"] and row["minus_di"] > row["plus_di"]:
            return "trending_down"
    return "ranging"


def volatility_regime(
    indicators: pd.DataFrame, lookback: int = 500
) -> Literal["low", "normal", "high", "unknown"]:
    """Where the latest ATR (as % of close) ranks among the last ``lookback`` values."""
    atr_pct = (indicators["atr"] / indicators["close"]).dropna().iloc[-lookback:]
    if len(atr_pct) < 20:
        return "unknown"
    rank = float((atr_pct < atr_pct.iloc[-1]).mean())
    return "low" if rank < 0.25 else "high" if rank > 0.75 else "normal"


def rsi_divergences(indicators: pd.DataFrame, bars: int = PIVOT_BARS) -> list[Divergence]:
    """Consecutive price pivots that disagree with RSI: higher high with lower RSI (bearish), lower low
    with higher RSI (bullish)."""
    found: list[Divergence] = []
    sides: tuple[tuple[bool, Literal["bullish", "bearish"]], ...] = ((True, "bearish"), (False, "bullish"))
    for highs, kind in sides:
        column = "high" if highs else "low"
        points = pivots(indicators[column], bars, highs)
        times = [t for t in points.index if not pd.isna(indicators.at[t, "rsi"])]
        for first, second in pairwise(times):
            price_change = float(indicators.at[second, column] - indicators.at[first, column])
            rsi_change = float(indicators.at[second, "rsi"] - indicators.at[first, "rsi"])
            if (highs and price_change > 0 > rsi_change) or (not highs and price_change < 0 < rsi_change):
                found.append(
                    Divergence(kind, first.to_pydatetime(), second.to_pydatetime(), price_change, rsi_change)
                )
    return sorted(found, key=lambda d: d.second)


def anomalies(candles: pd.DataFrame, window: int = 100, threshold: float = 4.0) -> pd.DataFrame:
    """Boolean flags per candle: return, volume (and spread, if a ``spread`` column exists) beyond
    ``threshold`` rolling standard deviations of the previous ``window`` candles."""
    flags = pd.DataFrame(index=candles.index)
    series = {"price": np.log(candles["close"]).diff(), "volume": candles["volume"].astype(float)}
    if "spread" in candles:
        series["spread"] = candles["spread"].astype(float)
    for name, values in series.items():
        history = values.shift(1).rolling(window, min_periods=window)
        z = (values - history.mean()) / history.std()
        flags[f"{name}_anomaly"] = z.abs() > threshold
    return flags


def gaps(index: pd.DatetimeIndex, step: timedelta = timedelta(minutes=1)) -> list[Gap]:
    """Where consecutive candles are more than one step apart, and how many candles are missing."""
    deltas = index.to_series().diff().iloc[1:]
    result = []
    for time, delta in deltas[deltas > step].items():
        previous = time - delta
        result.append(Gap(previous.to_pydatetime(), int(delta / step) - 1))
    return result


def correlation_matrix(closes: dict[str, pd.Series], window: int = 240) -> pd.DataFrame:
    """Correlation of log returns over the last ``window`` common candles of each pair of symbols."""
    frame = pd.DataFrame(closes).dropna()
    returns = np.log(frame).diff().dropna().iloc[-window:]
    return returns.corr()

"""Technical indicators over a candle frame, computed with the same formulas and windows as ``ta``.

``compute(candles)`` takes columns ``open high low close volume`` with a UTC DatetimeIndex and returns a
copy with indicator columns added. Warm-up rows are NaN, exactly where ``ta`` has NaN (``fillna=False``).
``compute_reference(candles)`` computes the same columns with the ``ta`` library itself; tests hold the
two equal within 1e-9 relative on real candles.

Columns in this version: rsi, macd, macd_signal, macd_hist, bb_upper, bb_mid, bb_lower, bb_pband,
bb_width, ema_20, ema_50, ema_200, sma_20, sma_50.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RSI_WINDOW = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
BB_WINDOW, BB_DEVIATIONS = 20, 2
EMA_WINDOWS = (20, 50, 200)
SMA_WINDOWS = (20, 50)

INDICATOR_COLUMNS: tuple[str, ...] = (
    "rsi", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_mid", "bb_lower", "bb_pband", "bb_width",
    *(f"ema_{w}" for w in EMA_WINDOWS), *(f"sma_{w}" for w in SMA_WINDOWS),
)  # fmt: skip


def ema(series: pd.Series, window: int) -> pd.Series:
    return series.ewm(span=window, min_periods=window, adjust=False).mean()


def sma(series: pd.Series, window: int) -> pd.Series:
    return series.rolling(window=window, min_periods=window).mean()


def rsi(close: pd.Series, window: int = RSI_WINDOW) -> pd.Series:
    """Wilder's RSI (``ta.momentum.RSIIndicator``): 100 when there were no losses in the window."""
    diff = close.diff(1)
    gains = diff.where(diff > 0, 0.0)
    losses = -diff.where(diff < 0, 0.0)
    avg_gain = gains.ewm(alpha=1 / window, min_periods=window, adjust=False).mean()
    avg_loss = losses.ewm(alpha=1 / window, min_periods=window, adjust=False).mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(avg_loss == 0, 100.0, 100.0 - 100.0 / (1.0 + avg_gain / avg_loss))
    return pd.Series(values, index=close.index)


def compute(candles: pd.DataFrame) -> pd.DataFrame:
    close = candles["close"].astype(float)
    out = candles.copy()
    out["rsi"] = rsi(close)
    macd = ema(close, MACD_FAST) - ema(close, MACD_SLOW)
    out["macd"] = macd
    out["macd_signal"] = ema(macd, MACD_SIGNAL)
    out["macd_hist"] = macd - out["macd_signal"]
    mid = sma(close, BB_WINDOW)
    deviation = close.rolling(BB_WINDOW, min_periods=BB_WINDOW).std(ddof=0)
    upper, lower = mid + BB_DEVIATIONS * deviation, mid - BB_DEVIATIONS * deviation
    out["bb_upper"], out["bb_mid"], out["bb_lower"] = upper, mid, lower
    out["bb_pband"] = (close - lower) / (upper - lower)
    out["bb_width"] = (upper - lower) / mid * 100
    for window in EMA_WINDOWS:
        out[f"ema_{window}"] = ema(close, window)
    for window in SMA_WINDOWS:
        out[f"sma_{window}"] = sma(close, window)
    return out


def compute_reference(candles: pd.DataFrame) -> pd.DataFrame:
    """The same columns computed by the ``ta`` library (the reference implementation)."""
    import ta

    close = candles["close"].astype(float)
    out = candles.copy()
    out["rsi"] = ta.momentum.RSIIndicator(close).rsi()
    macd = ta.trend.MACD(close)
    out["macd"], out["macd_signal"], out["macd_hist"] = macd.macd(), macd.macd_signal(), macd.macd_diff()
    bands = ta.volatility.BollingerBands(close)
    out["bb_upper"], out["bb_mid"], out["bb_lower"] = (
        bands.bollinger_hband(), bands.bollinger_mavg(), bands.bollinger_lband(),
    )  # fmt: skip
    out["bb_pband"], out["bb_width"] = bands.bollinger_pband(), bands.bollinger_wband()
    for window in EMA_WINDOWS:
        out[f"ema_{window}"] = ta.trend.EMAIndicator(close, window).ema_indicator()
    for window in SMA_WINDOWS:
        out[f"sma_{window}"] = ta.trend.SMAIndicator(close, window).sma_indicator()
    return out

"""The platform's built-in strategies, on the public API (``agent.strategies.api``).

Each reads only its last ``warmup`` candles, so live (a window of them) and a backtest (the whole history at
once) decide alike. They use the platform's indicator columns where those fit, and otherwise windows
computed exactly per row (``window``), whose values do not depend on where the history starts.

- ``ema_cross`` / ``sma_cross``: EMA20/EMA50 (SMA20/SMA50) cross, the rule of INTERNAL_SIGNALS: buy when
  the spread turns positive, sell when it turns negative (a 0 signals nothing).
- ``rsi_divergence``: the close makes a new low of ``lookback`` candles while RSI stays above its own low
  there (bullish, RSI below ``oversold_zone``): long; the mirror image: short. Longs exit when RSI crosses
  above 70, shorts when it crosses below 30. Stop ``stop_atr`` ATRs away.
- ``sr_break_volume``: the close breaks the highest high (lowest low) of the ``lookback`` candles before it,
  the first close beyond it, on at least ``volume_ratio`` times the 20-candle average volume (``rel_volume``).
  Stop just behind the broken level (half an ATR).
- ``bb_squeeze``: the Bollinger bands (20, 2) were at their narrowest of ``lookback`` candles on the previous
  candle, and this close leaves them: long above its upper band, short below its lower one. Stop at the
  middle band; exits when the close crosses back over the middle band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from agent.strategies.api import FLAGS, FloatParam, IntParam, Strategy


def window(values: np.ndarray, length: int, how: str) -> np.ndarray:
    """``how`` (max, min, mean, std: population) of each row's last ``length`` values (NaN before that),
    computed on each window alone: the same whatever came before it."""
    out = np.full(len(values), np.nan)
    if len(values) >= length:
        windows = sliding_window_view(values, length)
        out[length - 1 :] = getattr(np, how)(windows, axis=1)
    return out


def before(values: np.ndarray, steps: int = 1) -> np.ndarray:
    """``values`` shifted down by ``steps`` rows (NaN at the top)."""
    return np.r_[np.full(min(steps, len(values)), np.nan), values[:-steps]] if steps else values


def frame_of(frame: pd.DataFrame, **columns: np.ndarray) -> pd.DataFrame:
    """The signals frame: every flag False unless given, on ``frame``'s index."""
    flags = {name: np.zeros(len(frame), dtype=bool) for name in FLAGS}
    return pd.DataFrame({**flags, **columns}, index=frame.index)


class _Cross(Strategy):
    abstract = True
    timeframe = "15m"
    warmup = 2
    fast_line = ""
    slow_line = ""

    def signals(self, frame: pd.DataFrame) -> pd.DataFrame:
        spread = frame[self.fast_line].to_numpy(dtype=float) - frame[self.slow_line].to_numpy(dtype=float)
        previous = before(spread)
        with np.errstate(invalid="ignore"):
            cross = ~np.isnan(previous) & ~np.isnan(spread) & (spread != 0) & ((previous > 0) != (spread > 0))
            return frame_of(frame, entry_long=cross & (spread > 0), entry_short=cross & (spread < 0))


class EmaCross(_Cross):
    name = "ema_cross"
    fast_line, slow_line = "ema_20", "ema_50"


class SmaCross(_Cross):
    name = "sma_cross"
    fast_line, slow_line = "sma_20", "sma_50"


class RsiDivergence(Strategy):
    name = "rsi_divergence"
    timeframe = "15m"
    warmup = 61
    params = {
        "lookback": IntParam(20, low=5, high=60),
        "oversold_zone": FloatParam(40.0, low=10.0, high=50.0),
        "stop_atr": FloatParam(2.0, low=0.5, high=10.0),
    }

    def signals(self, frame: pd.DataFrame) -> pd.DataFrame:
        lookback, zone = int(self.p["lookback"]), float(self.p["oversold_zone"])
        close, rsi = frame["close"].to_numpy(dtype=float), frame["rsi"].to_numpy(dtype=float)
        atr = frame["atr"].to_numpy(dtype=float)
        low_close, high_close = before(window(close, lookback, "min")), before(window(close, lookback, "max"))
        low_rsi, high_rsi = before(window(rsi, lookback, "min")), before(window(rsi, lookback, "max"))
        with np.errstate(invalid="ignore"):
            long = (close < low_close) & (rsi > low_rsi) & (rsi < zone)
            short = (close > high_close) & (rsi < high_rsi) & (rsi > 100 - zone)
            risk = np.where(atr > 0, atr * float(self.p["stop_atr"]), np.nan)
            stop = np.where(long, close - risk, np.where(short, close + risk, np.nan))
            return frame_of(
                frame, entry_long=long, entry_short=short, exit_long=(rsi > 70) & ~(before(rsi) > 70),
                exit_short=(rsi < 30) & ~(before(rsi) < 30), stop_loss=stop,
            )  # fmt: skip


class SrBreakVolume(Strategy):
    name = "sr_break_volume"
    timeframe = "15m"
    warmup = 102
    params = {
        "lookback": IntParam(50, low=10, high=100),
        "volume_ratio": FloatParam(1.5, low=1.0, high=10.0),
    }

    def signals(self, frame: pd.DataFrame) -> pd.DataFrame:
        lookback = int(self.p["lookback"])
        close = frame["close"].to_numpy(dtype=float)
        resistance = before(window(frame["high"].to_numpy(dtype=float), lookback, "max"))
        support = before(window(frame["low"].to_numpy(dtype=float), lookback, "min"))
        atr = np.nan_to_num(frame["atr"].to_numpy(dtype=float), nan=0.0)
        loud = frame["rel_volume"].to_numpy(dtype=float) >= float(self.p["volume_ratio"])
        with np.errstate(invalid="ignore"):
            up = (close > resistance) & ~(before(close) > before(resistance)) & loud
            down = (close < support) & ~(before(close) < before(support)) & loud
            stop = np.where(up, resistance - atr / 2, np.where(down, support + atr / 2, np.nan))
            return frame_of(frame, entry_long=up, entry_short=down, stop_loss=stop)


class BbSqueeze(Strategy):
    name = "bb_squeeze"
    timeframe = "15m"
    warmup = 140
    params = {"lookback": IntParam(100, low=20, high=120)}

    def indicators(self, frame: pd.DataFrame) -> pd.DataFrame:
        close = frame["close"].to_numpy(dtype=float)
        mid, deviation = window(close, 20, "mean"), window(close, 20, "std")
        frame["squeeze_mid"], frame["squeeze_upper"] = mid, mid + 2 * deviation
        frame["squeeze_lower"] = mid - 2 * deviation
        frame["squeeze_width"] = 4 * deviation / mid
        return frame

    def signals(self, frame: pd.DataFrame) -> pd.DataFrame:
        close, mid = frame["close"].to_numpy(dtype=float), frame["squeeze_mid"].to_numpy(dtype=float)
        width = frame["squeeze_width"].to_numpy(dtype=float)
        narrowest = width <= window(width, int(self.p["lookback"]), "min")
        squeezed = before(narrowest.astype(float)) == 1
        with np.errstate(invalid="ignore"):
            long = squeezed & (close > before(frame["squeeze_upper"].to_numpy(dtype=float)))
            short = squeezed & (close < before(frame["squeeze_lower"].to_numpy(dtype=float)))
            long &= mid < close
            short &= mid > close
            stop = np.where(long | short, mid, np.nan)
            was_above, was_below = ~(before(close) < before(mid)), ~(before(close) > before(mid))
            return frame_of(
                frame, entry_long=long, entry_short=short, exit_long=(close < mid) & was_above,
                exit_short=(close > mid) & was_below, stop_loss=stop,
            )  # fmt: skip


BUILT_IN: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (EmaCross, SmaCross, RsiDivergence, SrBreakVolume, BbSqueeze)
}

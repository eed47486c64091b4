"""Technical indicators over a candle frame, computed with the same formulas and windows as ``ta``.

``compute(candles)`` takes columns ``open high low close volume`` with a UTC DatetimeIndex and returns a
copy with the columns of ``INDICATOR_COLUMNS`` added. Everything is vectorised (pandas, numpy, and
``scipy.signal.lfilter`` for Wilder's recursive smoothing), where ``ta`` loops in Python for ATR and ADX.
``compute_reference(candles)`` computes the same columns with ``ta`` itself (the reference); tests hold the
two equal within 1e-9 relative on the real BTC month.

Conventions (``ta``'s defaults): RSI 14 (Wilder), MACD 12/26/9, Bollinger 20 x 2 (population std;
``bb_pband`` is %B, ``bb_width`` is the band width in % of the middle band), ATR 14 (Wilder, seeded with
the mean of the first 14 true ranges), ADX/+DI/-DI 14 (Wilder sums; ADX seeded with the mean of the first
14 DX values), Stochastic 14 with a 3-period %D, rolling VWAP over 14 candles on the typical price, OBV
from the first candle, EMA 20/50/200, SMA 20/50, relative volume against a 20-period volume SMA.
One deliberate difference: where ``ta`` writes 0 during an indicator's warm-up (ATR, ADX, +DI, -DI),
we write NaN, so a warm-up value is never mistaken for a real zero. The rows are the same ones.

``IncrementalIndicators`` folds one closed candle at a time into O(window) state and gives the same
latest values as ``compute`` over the whole history.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.signal import lfilter

RSI_WINDOW = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
BB_WINDOW, BB_DEVIATIONS = 20, 2.0
ATR_WINDOW = ADX_WINDOW = 14
STOCH_WINDOW, STOCH_SMOOTH = 14, 3
VWAP_WINDOW = 14
VOLUME_WINDOW = 20
EMA_WINDOWS = (20, 50, 200)
SMA_WINDOWS = (20, 50)

INDICATOR_COLUMNS: tuple[str, ...] = (
    "rsi", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_mid", "bb_lower", "bb_pband", "bb_width",
    "atr", "adx", "plus_di", "minus_di", "stoch_k", "stoch_d", "vwap", "obv",
    *(f"ema_{w}" for w in EMA_WINDOWS), *(f"sma_{w}" for w in SMA_WINDOWS), "rel_volume",
)  # fmt: skip


# --- building blocks ------------------------------------------------------------------------------------
def ema(series: pd.Series, window: int) -> pd.Series:
    return series.ewm(span=window, min_periods=window, adjust=False).mean()


def sma(series: pd.Series, window: int) -> pd.Series:
    return series.rolling(window=window, min_periods=window).mean()


def wilder_sum(seed: float, values: np.ndarray, window: int) -> np.ndarray:
    """x[0] = seed; x[k] = x[k-1] * (1 - 1/window) + values[k-1]: Wilder's running sum, as a linear filter."""
    decay = 1.0 - 1.0 / window
    if len(values) == 0:
        return np.array([seed])
    tail, _ = lfilter([1.0], [1.0, -decay], values, zi=[decay * seed])
    return np.concatenate(([seed], tail))


def wilder_mean(seed: float, values: np.ndarray, window: int) -> np.ndarray:
    """x[0] = seed; x[k] = (x[k-1] * (window - 1) + values[k-1]) / window."""
    decay = (window - 1) / window
    if len(values) == 0:
        return np.array([seed])
    tail, _ = lfilter([1.0 / window], [1.0, -decay], values, zi=[decay * seed])
    return np.concatenate(([seed], tail))


def rsi(close: pd.Series, window: int = RSI_WINDOW) -> pd.Series:
    """Wilder's RSI: 100 when there was no loss in the averaging."""
    diff = close.diff(1)
    gains = diff.where(diff > 0, 0.0)
    losses = -diff.where(diff < 0, 0.0)
    avg_gain = gains.ewm(alpha=1 / window, min_periods=window, adjust=False).mean()
    avg_loss = losses.ewm(alpha=1 / window, min_periods=window, adjust=False).mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(avg_loss == 0, 100.0, 100.0 - 100.0 / (1.0 + avg_gain / avg_loss))
    return pd.Series(values, index=close.index)


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """High - low on the first candle, then the largest of the three true-range legs."""
    previous = np.concatenate(([np.nan], close[:-1]))
    legs = np.vstack((high - low, np.abs(high - previous), np.abs(low - previous)))
    return np.nanmax(legs, axis=0)


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = ATR_WINDOW) -> np.ndarray:
    out = np.full(len(close), np.nan)
    if len(close) < window:
        return out
    tr = true_range(high, low, close)
    out[window - 1 :] = wilder_mean(float(tr[:window].mean()), tr[window:], window)
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, 100.0 * numerator / denominator, 0.0)


def adx(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = ADX_WINDOW
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(adx, plus_di, minus_di) aligned exactly as ``ta.trend.ADXIndicator``."""
    n, size = window, len(close)
    adx_out, plus_out, minus_out = (np.full(size, np.nan) for _ in range(3))
    if size <= n:
        return adx_out, plus_out, minus_out
    previous = np.concatenate(([np.nan], close[:-1]))
    movement = np.fmax(high, previous) - np.fmin(low, previous)  # NaN on the first candle
    up = np.concatenate(([np.nan], high[1:] - high[:-1]))
    down = np.concatenate(([np.nan], low[:-1] - low[1:]))
    positive = np.where((up > down) & (up > 0), up, 0.0)
    negative = np.where((down > up) & (down > 0), down, 0.0)
    # Wilder sums indexed by i = t - n, for candles t = n .. size-1
    trs = wilder_sum(float(movement[1 : n + 1].sum()), movement[n + 1 :], n)
    dip = wilder_sum(float(positive[1 : n + 1].sum()), positive[n + 1 :], n)
    din = wilder_sum(float(negative[1 : n + 1].sum()), negative[n + 1 :], n)
    plus, minus = _ratio(dip, trs), _ratio(din, trs)
    plus_out[n + 1 :], minus_out[n + 1 :] = plus[1:], minus[1:]
    total = plus + minus
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = np.where(total != 0, 100.0 * np.abs(plus - minus) / total, 0.0)
    if len(dx) >= n:
        smoothed = wilder_mean(float(dx[:n].mean()), dx[n:], n)
        adx_out[2 * n - 1 : 2 * n - 1 + len(smoothed)] = smoothed
    return adx_out, plus_out, minus_out


# --- the frame ------------------------------------------------------------------------------------------
def compute(candles: pd.DataFrame) -> pd.DataFrame:
    out = candles.copy()
    close = candles["close"].astype(float)
    high = candles["high"].to_numpy(dtype=float)
    low = candles["low"].to_numpy(dtype=float)
    closes = close.to_numpy()
    volume = candles["volume"].astype(float)

    out["rsi"] = rsi(close)
    macd_line = ema(close, MACD_FAST) - ema(close, MACD_SLOW)
    out["macd"] = macd_line
    out["macd_signal"] = ema(macd_line, MACD_SIGNAL)
    out["macd_hist"] = macd_line - out["macd_signal"]

    mid = sma(close, BB_WINDOW)
    deviation = close.rolling(BB_WINDOW, min_periods=BB_WINDOW).std(ddof=0)
    upper, lower = mid + BB_DEVIATIONS * deviation, mid - BB_DEVIATIONS * deviation
    out["bb_upper"], out["bb_mid"], out["bb_lower"] = upper, mid, lower
    out["bb_pband"] = (close - lower) / (upper - lower)
    out["bb_width"] = (upper - lower) / mid * 100

    out["atr"] = atr(high, low, closes)
    out["adx"], out["plus_di"], out["minus_di"] = adx(high, low, closes)

    lowest = candles["low"].rolling(STOCH_WINDOW, min_periods=STOCH_WINDOW).min()
    highest = candles["high"].rolling(STOCH_WINDOW, min_periods=STOCH_WINDOW).max()
    out["stoch_k"] = 100 * (close - lowest) / (highest - lowest)
    out["stoch_d"] = out["stoch_k"].rolling(STOCH_SMOOTH, min_periods=STOCH_SMOOTH).mean()

    typical = (candles["high"] + candles["low"] + close) / 3.0
    out["vwap"] = (typical * volume).rolling(VWAP_WINDOW, min_periods=VWAP_WINDOW).sum() / volume.rolling(
        VWAP_WINDOW, min_periods=VWAP_WINDOW
    ).sum()
    out["obv"] = np.where(close < close.shift(1), -volume, volume).cumsum()

    for window in EMA_WINDOWS:
        out[f"ema_{window}"] = ema(close, window)
    for window in SMA_WINDOWS:
        out[f"sma_{window}"] = sma(close, window)
    out["rel_volume"] = volume / sma(volume, VOLUME_WINDOW)
    return out


def compute_reference(candles: pd.DataFrame) -> pd.DataFrame:
    """The same columns computed by the ``ta`` library (warm-up zeros of ATR/ADX/DI turned into NaN)."""
    import ta

    high, low, close, volume = (candles[c].astype(float) for c in ("high", "low", "close", "volume"))
    out = candles.copy()
    out["rsi"] = ta.momentum.RSIIndicator(close).rsi()
    macd = ta.trend.MACD(close)
    out["macd"], out["macd_signal"], out["macd_hist"] = macd.macd(), macd.macd_signal(), macd.macd_diff()
    bands = ta.volatility.BollingerBands(close)
    out["bb_upper"], out["bb_mid"], out["bb_lower"] = (
        bands.bollinger_hband(), bands.bollinger_mavg(), bands.bollinger_lband(),
    )  # fmt: skip
    out["bb_pband"], out["bb_width"] = bands.bollinger_pband(), bands.bollinger_wband()
    n = len(candles)
    if n >= ATR_WINDOW:
        out["atr"] = _warmup_nan(
            ta.volatility.AverageTrueRange(high, low, close).average_true_range(), ATR_WINDOW - 1
        )
    else:
        out["atr"] = np.nan
    if n > 2 * ADX_WINDOW:
        indicator = ta.trend.ADXIndicator(high, low, close)
        out["adx"] = _warmup_nan(indicator.adx(), 2 * ADX_WINDOW - 1)
        out["plus_di"] = _warmup_nan(indicator.adx_pos(), ADX_WINDOW + 1)
        out["minus_di"] = _warmup_nan(indicator.adx_neg(), ADX_WINDOW + 1)
    else:
        out["adx"] = out["plus_di"] = out["minus_di"] = np.nan
    stoch = ta.momentum.StochasticOscillator(high, low, close)
    out["stoch_k"], out["stoch_d"] = stoch.stoch(), stoch.stoch_signal()
    out["vwap"] = ta.volume.VolumeWeightedAveragePrice(
        high, low, close, volume
    ).volume_weighted_average_price()
    out["obv"] = ta.volume.OnBalanceVolumeIndicator(close, volume).on_balance_volume()
    for window in EMA_WINDOWS:
        out[f"ema_{window}"] = ta.trend.EMAIndicator(close, window).ema_indicator()
    for window in SMA_WINDOWS:
        out[f"sma_{window}"] = ta.trend.SMAIndicator(close, window).sma_indicator()
    out["rel_volume"] = volume / ta.trend.SMAIndicator(volume, VOLUME_WINDOW).sma_indicator()
    return out


def _warmup_nan(series: pd.Series, first_valid: int) -> pd.Series:
    result = series.astype(float).copy()
    result.iloc[:first_valid] = np.nan
    return result


# --- incremental ----------------------------------------------------------------------------------------
@dataclass
class _Ewm:
    """pandas ``ewm(adjust=False)`` state: starts at the first value, valid after ``min_periods`` values."""

    alpha: float
    min_periods: int
    value: float = math.nan
    count: int = 0

    def update(self, x: float) -> float:
        if math.isnan(x):
            return self.current()
        self.value = x if self.count == 0 else (1 - self.alpha) * self.value + self.alpha * x
        self.count += 1
        return self.current()

    def current(self) -> float:
        return self.value if self.count >= self.min_periods else math.nan


class _Rolling:
    """The last ``size`` values with a running sum (re-added exactly every ``size * 64`` updates so the
    rounding of the add/subtract steps never accumulates)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: deque[float] = deque(maxlen=size)
        self.total = 0.0
        self._until_exact = size * 64

    def push(self, x: float) -> None:
        if len(self.items) == self.size:
            self.total -= self.items[0]
        self.items.append(x)
        self.total += x
        self._until_exact -= 1
        if self._until_exact <= 0:
            self.total = math.fsum(self.items)
            self._until_exact = self.size * 64

    @property
    def full(self) -> bool:
        return len(self.items) == self.size

    def mean(self) -> float:
        return self.total / self.size if self.full else math.nan


def _span(window: int) -> _Ewm:
    return _Ewm(2.0 / (window + 1), window)


@dataclass
class _Wilder:
    """Wilder smoothing seeded with the mean (``mean=True``) or the sum of the first ``window`` values."""

    window: int
    mean: bool
    seed: list[float] = field(default_factory=list)
    value: float = math.nan

    def update(self, x: float) -> float:
        n = self.window
        if len(self.seed) < n:
            self.seed.append(x)
            if len(self.seed) == n:
                self.value = sum(self.seed) / n if self.mean else sum(self.seed)
            return self.value
        self.value = (self.value * (n - 1) + x) / n if self.mean else self.value * (1 - 1 / n) + x
        return self.value


def _mean(rolling: _Rolling) -> float:
    """Exact mean for windows holding NaN or infinities (a running sum cannot recover from them)."""
    return sum(rolling.items) / rolling.size if rolling.full else math.nan


class IncrementalIndicators:
    """Folds closed candles one at a time; ``update`` returns the latest value of every column."""

    def __init__(self) -> None:
        self._previous_close = math.nan
        self._previous_high = math.nan
        self._previous_low = math.nan
        self._gain = _Ewm(1 / RSI_WINDOW, RSI_WINDOW)
        self._loss = _Ewm(1 / RSI_WINDOW, RSI_WINDOW)
        self._fast, self._slow, self._signal = _span(MACD_FAST), _span(MACD_SLOW), _span(MACD_SIGNAL)
        self._emas = {w: _span(w) for w in EMA_WINDOWS}
        self._closes = {w: _Rolling(w) for w in {BB_WINDOW, *SMA_WINDOWS}}
        self._volume_mean = _Rolling(VOLUME_WINDOW)
        self._vwap_volume, self._vwap_value = _Rolling(VWAP_WINDOW), _Rolling(VWAP_WINDOW)
        self._highs: deque[float] = deque(maxlen=STOCH_WINDOW)
        self._lows: deque[float] = deque(maxlen=STOCH_WINDOW)
        self._stoch = _Rolling(STOCH_SMOOTH)
        self._atr = _Wilder(ATR_WINDOW, mean=True)
        self._trs, self._dip, self._din = (_Wilder(ADX_WINDOW, mean=False) for _ in range(3))
        self._adx = _Wilder(ADX_WINDOW, mean=True)
        self._adx_value = math.nan
        self._obv = 0.0
        self._count = 0

    def update(self, open_: float, high: float, low: float, close: float, volume: float) -> dict[str, float]:
        first = self._count == 0
        self._count += 1
        values: dict[str, float] = {}
        diff = 0.0 if first else close - self._previous_close  # pandas: no change on the first candle
        self._gain.update(max(diff, 0.0))
        self._loss.update(max(-diff, 0.0))
        gain, loss = self._gain.current(), self._loss.current()
        if math.isnan(loss):
            values["rsi"] = math.nan
        else:
            values["rsi"] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
        fast, slow = self._fast.update(close), self._slow.update(close)
        macd_line = fast - slow
        signal = self._signal.update(macd_line)
        values.update(macd=macd_line, macd_signal=signal, macd_hist=macd_line - signal)
        for rolling in self._closes.values():
            rolling.push(close)
        self._bands(close, values)
        self._ranges(high, low, close, first, values)
        self._oscillators(high, low, close, volume, first, values)
        for window, state in self._emas.items():
            values[f"ema_{window}"] = state.update(close)
        for window in SMA_WINDOWS:
            values[f"sma_{window}"] = self._closes[window].mean()
        self._previous_close, self._previous_high, self._previous_low = close, high, low
        return values

    def _bands(self, close: float, values: dict[str, float]) -> None:
        window = self._closes[BB_WINDOW]
        if not window.full:
            values.update(
                bb_upper=math.nan, bb_mid=math.nan, bb_lower=math.nan, bb_pband=math.nan, bb_width=math.nan
            )
            return
        mid = window.mean()
        deviation = math.sqrt(sum((x - mid) ** 2 for x in window.items) / BB_WINDOW)
        upper, lower = mid + BB_DEVIATIONS * deviation, mid - BB_DEVIATIONS * deviation
        width = upper - lower
        values.update(
            bb_upper=upper, bb_mid=mid, bb_lower=lower,
            bb_pband=(close - lower) / width if width else math.nan, bb_width=width / mid * 100,
        )  # fmt: skip

    def _ranges(self, high: float, low: float, close: float, first: bool, values: dict[str, float]) -> None:
        previous = self._previous_close
        tr = high - low if first else max(high - low, abs(high - previous), abs(low - previous))
        atr_value = self._atr.update(tr)
        values["atr"] = atr_value
        values["adx"] = values["plus_di"] = values["minus_di"] = math.nan
        if first:
            return
        movement = max(high, previous) - min(low, previous)
        up, down = high - self._previous_high, self._previous_low - low
        positive = up if (up > down and up > 0) else 0.0
        negative = down if (down > up and down > 0) else 0.0
        seeded = len(self._trs.seed) == ADX_WINDOW
        trs, dip, din = self._trs.update(movement), self._dip.update(positive), self._din.update(negative)
        if math.isnan(trs):
            return
        plus = 100.0 * dip / trs if trs != 0 else 0.0
        minus = 100.0 * din / trs if trs != 0 else 0.0
        if seeded:  # ta leaves +DI/-DI empty on the seeding candle
            values["plus_di"], values["minus_di"] = plus, minus
        dx = 100.0 * abs(plus - minus) / (plus + minus) if plus + minus != 0 else 0.0
        values["adx"] = self._adx.update(dx)

    def _oscillators(
        self, high: float, low: float, close: float, volume: float, first: bool, values: dict[str, float]
    ) -> None:
        self._highs.append(high)
        self._lows.append(low)
        if len(self._highs) == STOCH_WINDOW:
            lowest, highest = min(self._lows), max(self._highs)
            span = highest - lowest
            stoch_k = 100 * (close - lowest) / span if span else (math.nan if close == lowest else math.inf)
        else:
            stoch_k = math.nan
        self._stoch.push(stoch_k)
        values["stoch_k"] = stoch_k
        values["stoch_d"] = self._stoch.mean() if math.isfinite(self._stoch.total) else _mean(self._stoch)
        self._vwap_value.push((high + low + close) / 3.0 * volume)
        self._vwap_volume.push(volume)
        values["vwap"] = (
            self._vwap_value.total / self._vwap_volume.total if self._vwap_value.full else math.nan
        )
        self._obv += -volume if (not first and close < self._previous_close) else volume
        values["obv"] = self._obv
        self._volume_mean.push(volume)
        values["rel_volume"] = volume / self._volume_mean.mean() if self._volume_mean.full else math.nan

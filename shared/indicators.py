"""Technical indicators over a candle frame, with the same formulas, windows and alignment as ``ta``.

``compute(candles)`` takes columns ``open high low close volume`` (one row per closed candle, UTC
DatetimeIndex) and returns a copy with the columns of ``INDICATOR_COLUMNS`` added. It is vectorised:
pandas rolling/ewm for what ``ta`` does with pandas, and ``scipy.signal.lfilter`` for Wilder's recursive
smoothing of ATR and ADX, which ``ta`` runs as Python loops (seconds on a year of minutes).
``compute_reference(candles)`` computes the same columns with ``ta`` itself; tests hold the two equal
within 1e-9 relative on the real BTC month. ``IncrementalIndicators`` folds one closed candle at a time
into O(window) state and gives the same latest values as ``compute`` over the same history.

Conventions (``ta`` 0.11 defaults, ``fillna=False``), and what they mean for a reader of the columns:

- Windows count rows, not minutes: a gap in the feed is not filled, the next candle is simply the next row.
- Warm-up rows are NaN. First valid row (0-based): rsi 13, atr 13, stoch_k/vwap 13, plus_di/minus_di 15,
  stoch_d 15, sma/ema/bb/rel_volume window-1 (ema_200: 199), macd 25, macd_signal/macd_hist 33, adx 27.
  ``ta`` itself writes 0.0 (not NaN) before ATR, +DI/-DI and ADX start; we write NaN on exactly those
  rows so that a warm-up value is never taken for a real zero (an ATR of 0 would size a position to
  infinity). ``compute_reference`` applies the same mask; every later row is ta's value.
- rsi: Wilder (ewm alpha=1/14, adjust=False) of gains and losses, the first candle counting as no change;
  100 when the average loss is 0, so a flat market reads 100, not 50.
- macd: EMA12 - EMA26 (each NaN until its own window is full), signal EMA9 of it, hist = macd - signal.
- Bollinger: SMA20 +- 2 population (ddof=0) standard deviations. ``bb_pband`` is %B (0 at the lower band,
  1 at the upper, outside [0, 1] beyond them, NaN when the bands have no width, e.g. 20 identical
  closes, or nearly identical ones whose rolling std pandas rounds to 0); ``bb_width`` is
  (upper - lower) / mid in percent.
- atr: true range (high - low on the first candle), Wilder mean seeded with the plain mean of the first
  14 true ranges.
- +DI/-DI/adx: Wilder sums (seeded with the sum of candles 1..14) of the directional movements and of
  max(high, prev close) - min(low, prev close); 0 where the sum is 0. ta leaves DI empty on the seeding
  candle (row 14) and seeds ADX with the mean of the first 14 DX values.
- stoch_k: 100 (close - lowest low) / (highest high - lowest low) over 14; NaN when the 14 candles have
  no range (and stoch_d NaN for the 3 rows that include it); stoch_d is its 3-row SMA.
- vwap: a rolling 14-candle VWAP of the typical price (h+l+c)/3, not a session VWAP; NaN when the 14
  candles traded nothing.
- obv: cumulative from the first row given (+volume on the first candle, then +-volume, unchanged close
  counts as up); its level depends on where the history starts, only its changes carry information.
- rel_volume: volume / SMA20(volume) (NaN when the 20 candles traded nothing).
- pandas' rolling standard deviation accumulates rounding over a long series (about 6e-8 relative on
  ``bb_width`` after the 45k-row month); ``compute`` (like ``ta``) inherits it, ``IncrementalIndicators``
  computes each window exactly, so on very long histories the two Bollinger %B/width differ at that level.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

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
    return np.asarray(np.nanmax(legs, axis=0), dtype=float)


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = ATR_WINDOW) -> np.ndarray:
    """Wilder's ATR seeded with the mean of the first ``window`` true ranges (row ``window - 1``)."""
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
    """A copy of ``candles`` (``open high low close volume``) with every column of ``INDICATOR_COLUMNS``."""
    out = candles.copy()
    high, low, close, volume = (candles[c].astype(float) for c in ("high", "low", "close", "volume"))
    _momentum_columns(out, close)
    _band_columns(out, close)
    _range_columns(out, high, low, close)
    _volume_columns(out, high, low, close, volume)
    for window in EMA_WINDOWS:
        out[f"ema_{window}"] = ema(close, window)
    for window in SMA_WINDOWS:
        out[f"sma_{window}"] = sma(close, window)
    out["rel_volume"] = volume / sma(volume, VOLUME_WINDOW)
    return out


def _momentum_columns(out: pd.DataFrame, close: pd.Series) -> None:
    out["rsi"] = rsi(close)
    macd_line = ema(close, MACD_FAST) - ema(close, MACD_SLOW)
    signal = ema(macd_line, MACD_SIGNAL)
    out["macd"], out["macd_signal"], out["macd_hist"] = macd_line, signal, macd_line - signal


def _band_columns(out: pd.DataFrame, close: pd.Series) -> None:
    mid = sma(close, BB_WINDOW)
    deviation = close.rolling(BB_WINDOW, min_periods=BB_WINDOW).std(ddof=0)
    upper, lower = mid + BB_DEVIATIONS * deviation, mid - BB_DEVIATIONS * deviation
    out["bb_upper"], out["bb_mid"], out["bb_lower"] = upper, mid, lower
    out["bb_pband"] = (close - lower) / (upper - lower).where(upper != lower)  # ta: NaN, not inf
    out["bb_width"] = (upper - lower) / mid * 100


def _range_columns(out: pd.DataFrame, high: pd.Series, low: pd.Series, close: pd.Series) -> None:
    highs, lows, closes = high.to_numpy(), low.to_numpy(), close.to_numpy()
    out["atr"] = atr(highs, lows, closes)
    out["adx"], out["plus_di"], out["minus_di"] = adx(highs, lows, closes)
    lowest = low.rolling(STOCH_WINDOW, min_periods=STOCH_WINDOW).min()
    highest = high.rolling(STOCH_WINDOW, min_periods=STOCH_WINDOW).max()
    out["stoch_k"] = 100 * (close - lowest) / (highest - lowest)
    out["stoch_d"] = out["stoch_k"].rolling(STOCH_SMOOTH, min_periods=STOCH_SMOOTH).mean()


def _volume_columns(
    out: pd.DataFrame, high: pd.Series, low: pd.Series, close: pd.Series, volume: pd.Series
) -> None:
    price_volume = (high + low + close) / 3.0 * volume
    out["vwap"] = (
        price_volume.rolling(VWAP_WINDOW, min_periods=VWAP_WINDOW).sum()
        / volume.rolling(VWAP_WINDOW, min_periods=VWAP_WINDOW).sum()
    )
    out["obv"] = np.where(close < close.shift(1), -volume, volume).cumsum()


def compute_reference(candles: pd.DataFrame) -> pd.DataFrame:
    """The same columns computed by the ``ta`` library itself, with ta's default windows.

    Two adjustments, both outside ta's real output: ta's placeholder zeros before ATR, +DI/-DI and ADX
    start become NaN (the rows are listed in ``_warmup_nan`` calls; a test checks they are exactly 0 in
    ta), and where ta raises because there are too few rows for ATR (< 14), DI (< 14) or ADX (< 28) the
    column is all NaN."""
    import ta  # only the reference needs it; importing ta costs ~0.3 s

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
    _reference_ranges(out, high, low, close)
    stoch = ta.momentum.StochasticOscillator(high, low, close)
    out["stoch_k"], out["stoch_d"] = stoch.stoch(), stoch.stoch_signal()
    vwap = ta.volume.VolumeWeightedAveragePrice(high, low, close, volume)
    out["vwap"] = vwap.volume_weighted_average_price()
    out["obv"] = ta.volume.OnBalanceVolumeIndicator(close, volume).on_balance_volume()
    for window in EMA_WINDOWS:
        out[f"ema_{window}"] = ta.trend.EMAIndicator(close, window).ema_indicator()
    for window in SMA_WINDOWS:
        out[f"sma_{window}"] = ta.trend.SMAIndicator(close, window).sma_indicator()
    out["rel_volume"] = volume / ta.trend.SMAIndicator(volume, VOLUME_WINDOW).sma_indicator()
    return out


def _reference_ranges(out: pd.DataFrame, high: pd.Series, low: pd.Series, close: pd.Series) -> None:
    import ta

    rows = len(close)
    out["atr"] = out["adx"] = out["plus_di"] = out["minus_di"] = np.nan
    if rows >= ATR_WINDOW:
        average = ta.volatility.AverageTrueRange(high, low, close).average_true_range()
        out["atr"] = _warmup_nan(average, ATR_WINDOW - 1)
    if rows >= ADX_WINDOW:
        indicator = ta.trend.ADXIndicator(high, low, close)
        out["plus_di"] = _warmup_nan(indicator.adx_pos(), ADX_WINDOW + 1)
        out["minus_di"] = _warmup_nan(indicator.adx_neg(), ADX_WINDOW + 1)
        if rows >= 2 * ADX_WINDOW:
            out["adx"] = _warmup_nan(indicator.adx(), 2 * ADX_WINDOW - 1)


def _warmup_nan(series: pd.Series, first_valid: int) -> pd.Series:
    """ta's series with its placeholder values before row ``first_valid`` replaced by NaN."""
    result = series.astype(float).copy()
    result.iloc[:first_valid] = np.nan
    return result


# --- incremental ----------------------------------------------------------------------------------------
_OHLCV = ("open", "high", "low", "close", "volume")


def _div(numerator: float, denominator: float) -> float:
    """Float division with numpy/pandas semantics: x/0 is +-inf and 0/0 is NaN, never an exception."""
    if denominator != 0 or math.isnan(denominator):
        return numerator / denominator
    if numerator == 0 or math.isnan(numerator):
        return math.nan
    return math.copysign(math.inf, numerator) * math.copysign(1.0, denominator)


class _Ewm:
    """pandas ``ewm(com=..., adjust=False, min_periods=...).mean()`` state, step for step as pandas runs it
    (``ewma`` in pandas/_libs/window/aggregations.pyx): starts at the first non-NaN value, and leaves the
    average untouched when the new value equals it, so a constant series stays exactly constant."""

    __slots__ = ("count", "min_periods", "new_weight", "old_weight", "value")

    def __init__(self, com: float, min_periods: int) -> None:
        alpha = 1.0 / (1.0 + com)
        self.old_weight, self.new_weight, self.min_periods = 1.0 - alpha, alpha, min_periods
        self.value, self.count = math.nan, 0

    @classmethod
    def span(cls, span: int) -> _Ewm:
        """``ewm(span=span, min_periods=span)`` (MACD and EMA)."""
        return cls((span - 1) / 2.0, span)

    @classmethod
    def wilder(cls, window: int) -> _Ewm:
        """``ewm(alpha=1/window, min_periods=window)`` (RSI)."""
        return cls(1.0 / (1.0 / window) - 1.0, window)

    def update(self, x: float) -> float:
        if not math.isnan(x):
            if self.count == 0:
                self.value = x
            elif self.value != x:
                old, new = self.old_weight, self.new_weight
                self.value = (old * self.value + new * x) / (old + new)
            self.count += 1
        return self.current()

    def current(self) -> float:
        return self.value if self.count >= self.min_periods else math.nan


class _Window:
    """The last ``size`` values, with pandas' ``rolling(size)`` conventions: NaN until full, NaN while a
    NaN or infinity is inside, a window of identical values has exactly that mean and a deviation of 0.
    Sums are exact (``math.fsum``, O(size)), so nothing drifts however long the state runs."""

    __slots__ = ("_bad", "_last", "_same", "items", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: deque[float] = deque(maxlen=size)
        self._bad = 0  # non-finite values inside the window
        self._same = 0  # trailing run of identical values
        self._last = math.nan

    def push(self, x: float) -> None:
        if len(self.items) == self.size and not math.isfinite(self.items[0]):
            self._bad -= 1
        self._bad += not math.isfinite(x)
        self._same = self._same + 1 if x == self._last else 1
        self._last = x
        self.items.append(x)

    @property
    def ready(self) -> bool:
        """Full and finite: the window has a value."""
        return len(self.items) == self.size and self._bad == 0

    def total(self) -> float:
        return math.fsum(self.items) if self.ready else math.nan

    def mean(self) -> float:
        if not self.ready:
            return math.nan
        return self._last if self._same >= self.size else math.fsum(self.items) / self.size

    def pstd(self, mean: float) -> float:
        """Population standard deviation (ddof=0) around ``mean`` (from ``self.mean()``, which is exact for
        identical values, so such a window gives exactly 0)."""
        if not self.ready:
            return math.nan
        return math.sqrt(math.fsum((x - mean) ** 2 for x in self.items) / self.size)


class _Wilder:
    """Wilder smoothing seeded with the mean (``mean=True``) or the sum (``mean=False``) of the first
    ``window`` values; NaN until seeded. Holds floats only once seeded."""

    __slots__ = ("count", "mean", "value", "window")

    def __init__(self, window: int, mean: bool) -> None:
        self.window, self.mean = window, mean
        self.count, self.value = 0, 0.0

    @property
    def seeded(self) -> bool:
        return self.count >= self.window

    def update(self, x: float) -> float:
        n = self.window
        self.count += 1
        if self.count < n:
            self.value += x
            return math.nan
        if self.count == n:
            self.value = (self.value + x) / n if self.mean else self.value + x
        elif self.mean:
            self.value = (self.value * (n - 1) + x) / n
        else:
            self.value = self.value * (1 - 1 / n) + x
        return self.value


class _Directional:
    """ATR, +DI, -DI and ADX from Wilder sums, aligned as ``ta`` aligns them (see ``adx``)."""

    __slots__ = ("_adx", "_atr", "_din", "_dip", "_previous", "_trs")

    def __init__(self) -> None:
        self._atr = _Wilder(ATR_WINDOW, mean=True)
        self._trs, self._dip, self._din = (_Wilder(ADX_WINDOW, mean=False) for _ in range(3))
        self._adx = _Wilder(ADX_WINDOW, mean=True)
        self._previous: tuple[float, float, float] | None = None  # high, low, close

    def update(self, high: float, low: float, close: float, values: dict[str, float]) -> None:
        previous = self._previous
        self._previous = (high, low, close)
        values["adx"] = values["plus_di"] = values["minus_di"] = math.nan
        if previous is None:
            values["atr"] = self._atr.update(high - low)
            return
        previous_high, previous_low, previous_close = previous
        legs = (high - low, abs(high - previous_close), abs(low - previous_close))
        values["atr"] = self._atr.update(max(legs))
        up, down = high - previous_high, previous_low - low
        emitted = self._trs.seeded  # ta leaves +DI/-DI empty on the seeding candle itself
        trs = self._trs.update(max(high, previous_close) - min(low, previous_close))
        dip = self._dip.update(up if (up > down and up > 0) else 0.0)
        din = self._din.update(down if (down > up and down > 0) else 0.0)
        if math.isnan(trs):
            return
        plus = 100.0 * dip / trs if trs != 0 else 0.0
        minus = 100.0 * din / trs if trs != 0 else 0.0
        if emitted:
            values["plus_di"], values["minus_di"] = plus, minus
        dx = 100.0 * abs(plus - minus) / (plus + minus) if plus + minus != 0 else 0.0
        values["adx"] = self._adx.update(dx)


class IncrementalIndicators:
    """Folds closed candles one at a time and returns the latest value of every column of
    ``INDICATOR_COLUMNS``, equal to the last row of ``compute`` over the same history (same start).

    State is O(largest window): ring buffers of at most 50 floats and a few floats per EMA/Wilder."""

    def __init__(self) -> None:
        self.count = 0
        self._previous_close = math.nan
        self._gain, self._loss = _Ewm.wilder(RSI_WINDOW), _Ewm.wilder(RSI_WINDOW)
        self._fast, self._slow = _Ewm.span(MACD_FAST), _Ewm.span(MACD_SLOW)
        self._signal = _Ewm.span(MACD_SIGNAL)
        self._emas = {w: _Ewm.span(w) for w in EMA_WINDOWS}
        self._closes = {w: _Window(w) for w in {BB_WINDOW, *SMA_WINDOWS}}
        self._directional = _Directional()
        self._highs: deque[float] = deque(maxlen=STOCH_WINDOW)
        self._lows: deque[float] = deque(maxlen=STOCH_WINDOW)
        self._stoch = _Window(STOCH_SMOOTH)
        self._price_volume, self._vwap_volume = _Window(VWAP_WINDOW), _Window(VWAP_WINDOW)
        self._volume = _Window(VOLUME_WINDOW)
        self._obv = 0.0

    def update_row(self, candle: Mapping[str, float]) -> dict[str, float]:
        """``update`` from anything indexable by ``open high low close volume`` (dict, pandas row)."""
        return self.update(*(float(candle[k]) for k in _OHLCV))

    def update(self, open_: float, high: float, low: float, close: float, volume: float) -> dict[str, float]:
        """Fold one closed candle; returns the latest value of every indicator column (NaN in warm-up)."""
        first = self.count == 0
        self.count += 1
        values: dict[str, float] = {}
        self._momentum(close, first, values)
        for closes in self._closes.values():
            closes.push(close)
        self._bands(close, values)
        self._directional.update(high, low, close, values)
        self._oscillator(high, low, close, values)
        self._volumes(high, low, close, volume, first, values)
        for span, state in self._emas.items():
            values[f"ema_{span}"] = state.update(close)
        for size in SMA_WINDOWS:
            values[f"sma_{size}"] = self._closes[size].mean()
        self._previous_close = close
        return values

    def _momentum(self, close: float, first: bool, values: dict[str, float]) -> None:
        diff = 0.0 if first else close - self._previous_close  # ta: no gain and no loss on the first candle
        gain, loss = self._gain.update(max(diff, 0.0)), self._loss.update(max(-diff, 0.0))
        values["rsi"] = (
            math.nan if math.isnan(loss) else (100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss))
        )
        macd_line = self._fast.update(close) - self._slow.update(close)
        signal = self._signal.update(macd_line)
        values.update(macd=macd_line, macd_signal=signal, macd_hist=macd_line - signal)

    def _bands(self, close: float, values: dict[str, float]) -> None:
        window = self._closes[BB_WINDOW]
        mid = window.mean()
        deviation = window.pstd(mid)
        upper, lower = mid + BB_DEVIATIONS * deviation, mid - BB_DEVIATIONS * deviation
        values.update(
            bb_upper=upper, bb_mid=mid, bb_lower=lower,
            bb_pband=(close - lower) / (upper - lower) if upper != lower else math.nan,
            bb_width=_div(upper - lower, mid) * 100,
        )  # fmt: skip

    def _oscillator(self, high: float, low: float, close: float, values: dict[str, float]) -> None:
        self._highs.append(high)
        self._lows.append(low)
        stoch_k = math.nan
        if len(self._highs) == STOCH_WINDOW:
            lowest = min(self._lows)
            stoch_k = _div(100 * (close - lowest), max(self._highs) - lowest)
        self._stoch.push(stoch_k)
        values["stoch_k"], values["stoch_d"] = stoch_k, self._stoch.mean()

    def _volumes(
        self, high: float, low: float, close: float, volume: float, first: bool, values: dict[str, float]
    ) -> None:
        self._price_volume.push((high + low + close) / 3.0 * volume)
        self._vwap_volume.push(volume)
        values["vwap"] = _div(self._price_volume.total(), self._vwap_volume.total())
        self._obv += -volume if (not first and close < self._previous_close) else volume
        values["obv"] = self._obv
        self._volume.push(volume)
        values["rel_volume"] = _div(volume, self._volume.mean())

"""Funding-rate and mark-price series from files, for a simulated exchange.

``FundingSeries``: the rate settled at each funding time (a fraction per interval; positive: longs pay).
Read from freqtrade's funding-rate files (``*-funding_rate.feather``: ``date, open, high, low, close,
volume`` where ``open`` is the rate), Bluefin Pro's funding history as ``bluefinai data download --funding``
writes it (``time, rate``), or any CSV/Parquet/Feather with a time column and a ``rate`` (or
``funding_rate``) column. Each rate is applied at its own timestamp.

``MarkSeries``: mark-price candles (any candle format ``shared.marketdata.files`` reads), looked up by the
close time of the last-price candle they belong to; finer mark candles than the price candles are folded
into the price candles' interval (``resampled``), coarser ones are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shared.marketdata.files import TIME_ALIASES, CandleFileError, _to_utc, read_candles
from shared.marketdata.interval import detect_interval_s

RATE_ALIASES = ("rate", "funding_rate", "fundingrate", "open")


@dataclass(frozen=True)
class FundingSeries:
    symbol: str
    times: np.ndarray  # epoch seconds of each settlement, increasing
    rates: np.ndarray  # the rate settled then, per interval, as a fraction

    def __post_init__(self) -> None:
        if len(self.times) != len(self.rates):
            raise ValueError("funding series: times and rates differ in length")
        if len(self.times) > 1 and bool(np.any(np.diff(self.times) <= 0)):
            raise ValueError(f"funding series of {self.symbol}: times must increase")

    def next_index(self, after: int) -> int:
        """The index of the first settlement strictly after ``after`` (epoch seconds)."""
        return int(np.searchsorted(self.times, after, side="right"))

    def rate_at(self, stamp: int) -> float | None:
        """The latest rate known at ``stamp`` (None before the first)."""
        index = int(np.searchsorted(self.times, stamp, side="right")) - 1
        return float(self.rates[index]) if index >= 0 else None


def _epoch_seconds(times: pd.Series) -> np.ndarray:
    since = times - pd.Timestamp("1970-01-01", tz="UTC")
    return np.asarray((since // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64))


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return pd.read_csv(path)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".feather":
        return pd.read_feather(path)
    raise CandleFileError(f"{path}: unknown format {suffix!r} (csv, parquet or feather)")


def read_funding(path: Path, symbol: str) -> FundingSeries:
    """A funding series from ``path`` (see the module docstring), sorted by time; a duplicate time or a
    missing rate is refused, never repaired."""
    raw = _read_table(path)
    if isinstance(raw.index, pd.DatetimeIndex) and not any(c in raw.columns for c in TIME_ALIASES):
        raw = raw.reset_index(names="time")
    raw = raw.rename(columns={c: str(c).strip().lower() for c in raw.columns})
    time_column = next((c for c in ("time", *TIME_ALIASES) if c in raw.columns), None)
    rate_column = next((c for c in RATE_ALIASES if c in raw.columns), None)
    if time_column is None or rate_column is None:
        raise CandleFileError(
            f"{path}: a funding file needs a time column ({'/'.join(('time', *TIME_ALIASES))}) and a rate "
            f"column ({'/'.join(RATE_ALIASES)}; freqtrade's 'open' is the rate)"
        )
    times = _to_utc(raw[time_column])
    rates = pd.to_numeric(raw[rate_column], errors="coerce")
    if rates.isna().any():
        raise CandleFileError(f"{path}: {int(rates.isna().sum())} funding rows without a numeric rate")
    frame = pd.DataFrame({"time": times, "rate": rates.astype(float)}).sort_values("time", kind="stable")
    if frame["time"].duplicated().any():
        raise CandleFileError(f"{path}: duplicate funding times")
    stamps = _epoch_seconds(frame["time"])
    return FundingSeries(symbol, stamps, frame["rate"].to_numpy(dtype=float))


@dataclass(frozen=True)
class MarkSeries:
    """Mark-price candles of one market: ``close_stamps`` (epoch seconds each candle closes) and ``ohlc``."""

    symbol: str
    close_stamps: np.ndarray
    ohlc: np.ndarray  # (n, 4): open, high, low, close
    interval_s: int = 60  # of each candle

    def resampled(self, interval_s: int) -> MarkSeries:
        """The same marks as candles of ``interval_s`` (a multiple of this series' interval) on UTC
        boundaries: first open, highest high, lowest low, last close of each bucket; empty buckets stay
        empty. Price candles of 5m need 5m marks: a 1m mark looked up at the 5m close would miss the wicks
        of its first four minutes."""
        if interval_s == self.interval_s:
            return self
        if interval_s < self.interval_s or interval_s % self.interval_s:
            raise ValueError(
                f"mark candles of {self.symbol} every {self.interval_s} s cannot make {interval_s} s candles"
            )
        if not len(self.close_stamps):
            return MarkSeries(self.symbol, self.close_stamps, self.ohlc, interval_s)
        opens = self.close_stamps - self.interval_s
        buckets = opens - opens % interval_s
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
        ends = np.r_[starts[1:], len(buckets)] - 1
        ohlc = np.column_stack(
            [
                self.ohlc[starts, 0],
                np.maximum.reduceat(self.ohlc[:, 1], starts),
                np.minimum.reduceat(self.ohlc[:, 2], starts),
                self.ohlc[ends, 3],
            ]
        )
        return MarkSeries(self.symbol, buckets[starts] + interval_s, ohlc, interval_s)

    def at_close(self, stamp: int) -> tuple[float, float, float, float] | None:
        """The mark candle that closes at ``stamp`` (None: the mark series has no such candle)."""
        index = int(np.searchsorted(self.close_stamps, stamp, side="left"))
        if index < len(self.close_stamps) and self.close_stamps[index] == stamp:
            o, h, low, c = self.ohlc[index].tolist()
            return o, h, low, c
        return None

    def aligned(self, close_stamps: np.ndarray) -> np.ndarray:
        """The mark (high, low) of each close time in ``close_stamps``; NaN where the series has none."""
        index = np.searchsorted(self.close_stamps, close_stamps, side="left")
        clipped = np.minimum(index, max(len(self.close_stamps) - 1, 0))
        found = (index < len(self.close_stamps)) & (self.close_stamps[clipped] == close_stamps)
        out = np.full((len(close_stamps), 2), np.nan)
        out[found] = self.ohlc[clipped[found]][:, 1:3]
        return out


def read_mark(path: Path, symbol: str) -> MarkSeries:
    """Mark-price candles from any candle file; their interval is detected like the replay's."""
    frame = read_candles(path).sort_values("timestamp", kind="stable").reset_index(drop=True)
    stamps = _epoch_seconds(frame["timestamp"])
    interval = detect_interval_s(stamps)
    ohlc = frame[["open", "high", "low", "close"]].to_numpy(dtype=float)
    return MarkSeries(symbol, stamps + interval, ohlc, interval)

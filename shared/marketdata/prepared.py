"""``PreparedMarketState``: the market state of a replay, computed ahead in one vectorised pass.

A backtest knows every candle in advance. Instead of folding each base candle (a "minute" below: 1m, or
the file's own interval) into six aggregators and six incremental indicator states (``MarketState``), this
computes, once and with numpy/pandas, the candles of every timeframe with the aggregator's exact rules (a
candle closes with its last minute, or across a gap when a minute of a later bucket arrives; empty buckets
make no candle), the minute at which each closes, and the indicators of every closed candle
(``shared.indicators.compute``, equal to the incremental fold; computed per timeframe when first read).
``add_candle`` then only moves a cursor. Everything it shows is what ``MarketState`` would show after the
same minutes (a test compares them minute by minute on the real month); besides, a reader that plans ahead
(internal signals finding their next cross, so a backtest can skip to it) reads every row at once
(``indicator_rows``, ``closing_minutes``, ``close_time_of_row``).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from shared.indicators import INDICATOR_COLUMNS, compute
from shared.market_structure import ADX_TRENDING, Level, support_resistance
from shared.marketdata.candles import BASE_SECONDS, EPOCH, TIMEFRAMES, BuiltCandle
from shared.marketdata.snapshot import RECENT_CANDLES, MarketSnapshot, MarketState, TimeframeView
from shared.models import Candle


@dataclass(frozen=True)
class _Timeframe:
    """The closed candles of one timeframe, in close order, and when each closes."""

    name: str
    seconds: int
    open_time: np.ndarray  # epoch seconds of each candle's bucket start
    ohlcv: np.ndarray  # (n, 5)
    minutes: np.ndarray  # how many base candles each was built from
    closes_at: np.ndarray  # the minute index whose arrival closes it (non-decreasing)
    first_minute: np.ndarray  # per minute: index of the first minute of its bucket
    bucket_end: np.ndarray  # per minute: does this minute close its own bucket

    @cached_property
    def indicators(self) -> dict[str, np.ndarray]:
        """Every indicator of every closed candle, computed when first read: a backtest pays only for the
        timeframes something looks at (a follow-the-signal run never reads the 1m ones, the costliest)."""
        table = compute(pd.DataFrame(self.ohlcv, columns=["open", "high", "low", "close", "volume"]))
        return {column: table[column].to_numpy(dtype=float) for column in INDICATOR_COLUMNS}

    @cached_property
    def trends(self) -> np.ndarray:
        """trend_regime of each candle."""
        return _trends(self.indicators)


def _trends(indicators: dict[str, np.ndarray]) -> np.ndarray:
    """``shared.market_structure.trend_regime`` of every row at once."""
    adx, fast, slow = indicators["adx"], indicators["ema_20"], indicators["ema_50"]
    plus, minus = indicators["plus_di"], indicators["minus_di"]
    unknown = np.isnan(adx) | np.isnan(fast) | np.isnan(slow) | np.isnan(plus) | np.isnan(minus)
    trending = adx >= ADX_TRENDING
    result = np.full(len(adx), "ranging", dtype=object)
    result[trending & (fast > slow) & (plus > minus)] = "trending_up"
    result[trending & (fast < slow) & (minus > plus)] = "trending_down"
    result[unknown] = "unknown"
    return result


def _timeframe(name: str, seconds: int, stamps: np.ndarray, ohlcv: np.ndarray, base_s: int) -> _Timeframe:
    count = len(stamps)
    bucket = stamps - stamps % seconds
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]]) if count else np.zeros(0, dtype=int)
    ends = np.r_[starts[1:], count] - 1  # the last minute present in each bucket
    first_minute = np.repeat(starts, ends - starts + 1)
    complete = stamps[ends] + base_s >= bucket[ends] + seconds
    closes_at = np.where(complete, ends, ends + 1)  # its last minute, or the next minute across a gap
    closed = closes_at < count  # the last bucket may still be open at the end of the data
    candles = np.zeros((int(closed.sum()), 5))
    if count:
        candles[:, 0] = ohlcv[starts[closed], 0]
        candles[:, 1] = np.maximum.reduceat(ohlcv[:, 1], starts)[closed]  # over [start, next start)
        candles[:, 2] = np.minimum.reduceat(ohlcv[:, 2], starts)[closed]
        candles[:, 3] = ohlcv[ends[closed], 3]
        candles[:, 4] = np.add.reduceat(ohlcv[:, 4], starts)[closed]
    return _Timeframe(
        name, seconds, bucket[starts[closed]], candles, (ends - starts + 1)[closed], closes_at[closed],
        first_minute, stamps + base_s >= bucket + seconds,
    )  # fmt: skip


def _read_only(array: np.ndarray) -> np.ndarray:
    """A view of prepared data that a reader cannot change under the state's feet."""
    view = array.view()
    view.flags.writeable = False
    return view


class PreparedMarketState(MarketState):
    """A ``MarketState`` whose minutes are known in advance (``frame``: timestamp, open, high, low, close,
    volume, in order, starting with the first minute the state will be given; minutes of ``base_s``)."""

    def __init__(self, symbol: str, source: str, frame: pd.DataFrame, base_s: int = BASE_SECONDS) -> None:
        super().__init__(symbol, source, base_s)
        stamps = pd.to_datetime(frame["timestamp"], utc=True) - pd.Timestamp(EPOCH)
        self._all_stamps = (stamps // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
        self._all_minutes = frame[["open", "high", "low", "close", "volume"]].to_numpy(dtype=float)
        self._stamps = self._all_stamps[:0]
        self._minutes = self._all_minutes[:0]
        self._frames: dict[str, _Timeframe] = {}
        self._closes_at: dict[str, list[int]] = {}
        self._higher: list[tuple[str, list[int]]] = []
        self._cursor = -1  # the last minute given
        self._closed = dict.fromkeys(self.timeframes, 0)  # candles closed so far, per timeframe
        self._levels_cache: tuple[int, list[Level]] = (-1, [])

    @property
    def cursor(self) -> int:
        """The index of the last minute given (-1 before the first)."""
        return self._cursor

    def _prepare_from(self, stamp: int) -> None:
        """Everything from the first minute this state is given (as ``MarketState`` would start there)."""
        first = int(np.searchsorted(self._all_stamps, stamp))
        self._stamps, self._minutes = self._all_stamps[first:], self._all_minutes[first:]
        stamps, minutes = self._stamps, self._minutes
        self._frames = {
            tf: _timeframe(tf, TIMEFRAMES[tf], stamps, minutes, self.base_s) for tf in self.timeframes
        }
        self._closes_at = {tf: frame.closes_at.tolist() for tf, frame in self._frames.items()}
        self._higher = [(tf, closes) for tf, closes in self._closes_at.items() if tf != self.base_timeframe]

    def _candle(self, tf: _Timeframe, index: int) -> Candle:
        o, h, low, c, v = tf.ohlcv[index]
        stamp = EPOCH + timedelta(seconds=int(tf.open_time[index]))
        return Candle(self.symbol, stamp, float(o), float(h), float(low), float(c), float(v), tf.name)

    def add_candle(self, candle: Candle) -> list[BuiltCandle]:
        stamp = int((candle.open_time - EPOCH).total_seconds())
        if self._cursor < 0:
            self._prepare_from(stamp)
        index = self._cursor + 1
        if index >= len(self._stamps) or stamp != self._stamps[index]:
            raise ValueError(f"{candle.open_time} is not the next prepared minute of {self.symbol}")
        self._cursor = index
        built = [BuiltCandle(candle, 1, partial=False)]  # every minute closes its own (base) candle
        closed = self._closed
        closed[self.base_timeframe] = index + 1
        for name, closes_at in self._higher:
            done = closed[name]
            while done < len(closes_at) and closes_at[done] == index:
                tf = self._frames[name]
                built.append(BuiltCandle(self._candle(tf, done), int(tf.minutes[done]), partial=False))
                done += 1
            closed[name] = done
        self.price, self.time = candle.close, candle.open_time
        self._changes += 1
        return built

    def next_close(self, timeframe: str, minute: int) -> int | None:
        """The index (in minutes given so far + ahead) of the first minute at or after ``minute`` that closes
        a candle of ``timeframe`` (None: none before the end of the data)."""
        if timeframe == self.base_timeframe:
            return minute if minute < len(self._stamps) else None
        closes = self._closes_at[timeframe]
        at = bisect_left(closes, minute)
        return closes[at] if at < len(closes) else None

    def rows_closed(self, timeframe: str) -> int:
        """How many candles of ``timeframe`` have closed so far (the index of the next one to close)."""
        return self._closed[timeframe]

    def indicator_rows(self, timeframe: str, name: str) -> np.ndarray:
        """One indicator of every candle of ``timeframe`` in the data, closed or still ahead, in close order
        (from the first minute given on: a reader can plan ahead, e.g. when the next signal is due)."""
        return _read_only(self._frames[timeframe].indicators[name])

    def candle_rows(self, timeframe: str) -> tuple[np.ndarray, np.ndarray]:
        """Every candle of ``timeframe`` in the data, closed or still ahead, in close order: the open times
        (epoch seconds) and the OHLCV rows (n, 5) (a reader that plans ahead computes on all of them)."""
        tf = self._frames[timeframe]
        return _read_only(tf.open_time), _read_only(tf.ohlcv)

    def closing_minutes(self, timeframe: str) -> np.ndarray:
        """The minute index whose arrival closes each candle of ``timeframe`` (several candles may close at
        one minute, across a gap)."""
        return _read_only(self._frames[timeframe].closes_at)

    def close_time_of_row(self, timeframe: str, row: int) -> datetime:
        """The market time (close of the minute) at which candle ``row`` of ``timeframe`` closes."""
        minute = self._frames[timeframe].closes_at[row]
        return EPOCH + timedelta(seconds=int(self._stamps[minute]) + self.base_s)

    def skip(self, count: int) -> None:
        """Take the next ``count`` minutes at once (a run of quiet candles in a backtest): the state is then
        exactly what ``count`` calls of ``add_candle`` leave behind."""
        if count <= 0:
            return
        index = self._cursor + count
        if self._cursor < 0 or index >= len(self._stamps):
            raise ValueError("skip needs a prepared state and minutes ahead")
        self._cursor = index
        self._closed[self.base_timeframe] = index + 1
        for name, closes_at in self._higher:
            self._closed[name] = bisect_right(closes_at, index)
        self.price = float(self._minutes[index, 3])
        self.time = EPOCH + timedelta(seconds=int(self._stamps[index]))
        self._changes += 1

    def _row(self, timeframe: str) -> int:
        return self._closed.get(timeframe, 0) - 1  # -1: nothing closed (or below the base candles)

    def indicator(self, timeframe: str, name: str) -> float:
        row = self._row(timeframe)
        return float(self._frames[timeframe].indicators[name][row]) if row >= 0 else math.nan

    def indicators(self, timeframe: str) -> dict[str, float]:
        row = self._row(timeframe)
        if row < 0:
            return {}
        return {k: float(v[row]) for k, v in self._frames[timeframe].indicators.items()}

    def trend(self, timeframe: str) -> str:
        row = self._row(timeframe)
        return str(self._frames[timeframe].trends[row]) if row >= 0 else "unknown"

    def _recent_slice(self, timeframe: str) -> range:
        done = self._closed.get(timeframe, 0)
        return range(max(done - RECENT_CANDLES, 0), done)

    def recent(self, timeframe: str, limit: int = RECENT_CANDLES) -> list[tuple[Candle, dict[str, float]]]:
        if timeframe not in self._frames or limit <= 0:
            return []
        tf, rows = self._frames[timeframe], self._recent_slice(timeframe)
        indicators = tf.indicators
        return [
            (self._candle(tf, row), {name: float(values[row]) for name, values in indicators.items()})
            for row in rows[-limit:]
        ]

    def closes(self, timeframe: str) -> pd.Series:
        if timeframe not in self._frames:
            return pd.Series(dtype=float)
        tf, rows = self._frames[timeframe], self._recent_slice(timeframe)
        index = pd.to_datetime(tf.open_time[rows.start : rows.stop], unit="s", utc=True)
        return pd.Series(tf.ohlcv[rows.start : rows.stop, 3], index=index, dtype=float)

    def levels(self, timeframe: str | None = None) -> list[Level]:
        timeframe = timeframe or self.levels_timeframe
        if timeframe not in self._frames:
            return []
        done = self._closed[timeframe]
        if self._levels_cache[0] == done and timeframe == self.levels_timeframe:
            return self._levels_cache[1]
        tf, rows = self._frames[timeframe], self._recent_slice(timeframe)
        if len(rows) < 20:
            return []
        frame = pd.DataFrame(
            tf.ohlcv[rows.start : rows.stop, 1:4], columns=["high", "low", "close"],
            index=pd.to_datetime(tf.open_time[rows.start : rows.stop], unit="s", utc=True),
        )  # fmt: skip
        levels = support_resistance(frame)
        if timeframe == self.levels_timeframe:
            self._levels_cache = (done, levels)
        return levels

    def _partial(self, tf: _Timeframe) -> Candle | None:
        index = self._cursor
        if index < 0 or tf.bucket_end[index]:
            return None
        first = int(tf.first_minute[index])
        window = self._minutes[first : index + 1]
        start = EPOCH + timedelta(seconds=int(self._stamps[first] - self._stamps[first] % tf.seconds))
        return Candle(
            self.symbol, start, float(window[0, 0]), float(window[:, 1].max()),
            float(window[:, 2].min()), float(window[-1, 3]), float(window[:, 4].sum()), tf.name,
        )  # fmt: skip

    def _build_snapshot(self) -> MarketSnapshot:
        views: dict[str, Any] = {}
        for name, tf in self._frames.items():
            row = self._row(name)
            views[name] = TimeframeView(
                name, self._candle(tf, row) if row >= 0 else None, self._partial(tf), self.indicators(name),
                self.trend(name), self._closed[name],
            )  # fmt: skip
        return MarketSnapshot(
            self.symbol, self.time, self.price, self.source, views, self.levels(), self.book, self.funding,
            self.stale,
        )  # fmt: skip


def candle_frame(times: pd.DatetimeIndex, ohlcv: np.ndarray) -> pd.DataFrame:
    """The frame ``PreparedMarketState`` wants, from a feed's arrays."""
    frame = pd.DataFrame(ohlcv, columns=["open", "high", "low", "close", "volume"])
    frame.insert(0, "timestamp", times)
    return frame

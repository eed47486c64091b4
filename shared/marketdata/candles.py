"""Candles from ticks and from 1-minute candles, on UTC boundaries, for every timeframe the agent uses.

One code path for live and bulk: ``TimeframeAggregator.add`` folds one closed 1m candle and returns the
higher-timeframe candles it closes; ``aggregate_history`` is that same fold over a list. A candle closes
when its last minute arrives, or, across a gap, when a minute of a later bucket arrives. Gaps stay gaps:
an empty bucket produces no candle. The still-open candle of each timeframe is available as ``partial``
and is flagged ``partial=True``; it is never passed on as closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from shared.models import Candle

TIMEFRAMES: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_start(time: datetime, seconds: int) -> datetime:
    """The UTC-aligned start of the bucket of ``seconds`` that contains ``time``."""
    elapsed = int((time - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=elapsed - elapsed % seconds)


@dataclass(frozen=True)
class BuiltCandle:
    candle: Candle
    minutes: int  # how many 1m candles it was built from (fewer than the bucket holds across a gap)
    partial: bool


def _merge(current: Candle, minute: Candle) -> Candle:
    return replace(
        current,
        high=max(current.high, minute.high),
        low=min(current.low, minute.low),
        close=minute.close,
        volume=current.volume + minute.volume,
    )


class _Bucket:
    def __init__(self, timeframe: str, seconds: int) -> None:
        self.timeframe = timeframe
        self.seconds = seconds
        self.candle: Candle | None = None
        self.minutes = 0

    def add(self, minute: Candle) -> list[BuiltCandle]:
        closed: list[BuiltCandle] = []
        start = bucket_start(minute.open_time, self.seconds)
        if self.candle is not None and self.candle.open_time != start:
            closed.append(BuiltCandle(self.candle, self.minutes, partial=False))  # closed by a gap
            self.candle = None
        if self.candle is None:
            self.candle = replace(minute, open_time=start, timeframe=self.timeframe)
            self.minutes = 1
        else:
            self.candle = _merge(self.candle, minute)
            self.minutes += 1
        if minute.open_time + timedelta(seconds=60) >= start + timedelta(seconds=self.seconds):
            closed.append(BuiltCandle(self.candle, self.minutes, partial=False))
            self.candle = None
        return closed

    def partial(self) -> BuiltCandle | None:
        return BuiltCandle(self.candle, self.minutes, partial=True) if self.candle is not None else None


class TimeframeAggregator:
    """Folds closed 1m candles of one symbol into every timeframe of ``TIMEFRAMES``."""

    def __init__(self, timeframes: Iterable[str] = TIMEFRAMES) -> None:
        self._buckets = [_Bucket(tf, TIMEFRAMES[tf]) for tf in timeframes]
        self._last_minute: datetime | None = None

    def add(self, minute: Candle) -> list[BuiltCandle]:
        """Fold one closed 1m candle; return the candles it closes (shortest timeframe first)."""
        if minute.timeframe != "1m":
            raise ValueError(f"expected a 1m candle, got {minute.timeframe}")
        if self._last_minute is not None and minute.open_time <= self._last_minute:
            raise ValueError(f"candle at {minute.open_time} is not after {self._last_minute}")
        self._last_minute = minute.open_time
        closed: list[BuiltCandle] = []
        for bucket in self._buckets:
            closed.extend(bucket.add(minute))
        return closed

    def partials(self) -> dict[str, BuiltCandle]:
        return {b.timeframe: p for b in self._buckets if (p := b.partial()) is not None}


def aggregate_history(
    minutes: Iterable[Candle], timeframes: Iterable[str] = TIMEFRAMES
) -> dict[str, list[BuiltCandle]]:
    """Bulk history through the live code path: closed candles per timeframe, then each partial last."""
    aggregator = TimeframeAggregator(timeframes)
    result: dict[str, list[BuiltCandle]] = {tf: [] for tf in timeframes}
    for minute in minutes:
        for built in aggregator.add(minute):
            result[built.candle.timeframe].append(built)
    for timeframe, partial in aggregator.partials().items():
        result[timeframe].append(partial)
    return result


class TickCandleBuilder:
    """Builds 1m candles from trades (price, size, time); a minute closes when a later trade arrives or
    ``flush(now)`` passes its end. Minutes without trades produce no candle."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._current: Candle | None = None

    def add(self, price: float, size: float, time: datetime) -> list[Candle]:
        if price <= 0 or size < 0:
            raise ValueError("price must be positive and size non-negative")
        closed = self.flush(time)
        start = bucket_start(time, 60)
        if self._current is None:
            self._current = Candle(self.symbol, start, price, price, price, price, size)
        else:
            self._current = replace(
                self._current, high=max(self._current.high, price), low=min(self._current.low, price),
                close=price, volume=self._current.volume + size,
            )  # fmt: skip
        return closed

    def flush(self, now: datetime) -> list[Candle]:
        if self._current is not None and now >= self._current.open_time + timedelta(seconds=60):
            done, self._current = self._current, None
            return [done]
        return []

    def partial(self) -> Candle | None:
        return self._current

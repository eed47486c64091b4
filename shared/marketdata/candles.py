"""Candles from ticks and from base candles, on UTC boundaries, for every timeframe the agent uses.

The base candles are what the feed delivers: 1m from a live exchange, whatever interval a candle file has
(1m, 5m, 15m, 1h ...). The timeframes are the base one and those above it that it divides
(``timeframes_above``); a timeframe below the base cannot be built and is never shown.

One code path for live and bulk: ``TimeframeAggregator.add`` folds one closed base candle and returns the
higher-timeframe candles it closes; ``aggregate_history`` is that same fold over a list. A candle closes
when its last base candle arrives, or, across a gap, when a base candle of a later bucket arrives. Gaps
stay gaps: an empty bucket produces no candle. The still-open candle of each timeframe is available as
``partial`` and is flagged ``partial=True``; it is never passed on as closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from shared.models import Candle

TIMEFRAMES: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BASE_SECONDS = 60  # the base candles of a live feed
NAMES = {seconds: name for name, seconds in TIMEFRAMES.items()}


def timeframes_above(base_s: int) -> tuple[str, ...]:
    """The timeframes that candles of ``base_s`` seconds build: the base one and every longer one it
    divides (a 1h timeframe from 15m candles, never a 5m one)."""
    if base_s not in NAMES:
        raise ValueError(f"no timeframe of {base_s} s (known: {', '.join(TIMEFRAMES)})")
    return tuple(tf for tf, seconds in TIMEFRAMES.items() if seconds >= base_s and seconds % base_s == 0)


def bucket_start(time: datetime, seconds: int) -> datetime:
    """The UTC-aligned start of the bucket of ``seconds`` that contains ``time``."""
    elapsed = int((time - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=elapsed - elapsed % seconds)


@dataclass(frozen=True)
class BuiltCandle:
    candle: Candle
    minutes: int  # how many base candles it was built from (fewer than the bucket holds across a gap)
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
    def __init__(self, timeframe: str, seconds: int, base_s: int) -> None:
        self.timeframe = timeframe
        self.seconds = seconds
        self.base = timedelta(seconds=base_s)
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
        if minute.open_time + self.base >= start + timedelta(seconds=self.seconds):
            closed.append(BuiltCandle(self.candle, self.minutes, partial=False))
            self.candle = None
        return closed

    def partial(self) -> BuiltCandle | None:
        return BuiltCandle(self.candle, self.minutes, partial=True) if self.candle is not None else None


class TimeframeAggregator:
    """Folds closed base candles (``base_s`` seconds) of one symbol into every timeframe they build
    (``timeframes``, by default all of ``timeframes_above(base_s)``)."""

    def __init__(self, timeframes: Iterable[str] | None = None, base_s: int = BASE_SECONDS) -> None:
        usable = timeframes_above(base_s)
        chosen = usable if timeframes is None else tuple(timeframes)
        below = [tf for tf in chosen if tf not in usable]
        if below:
            raise ValueError(f"{', '.join(below)} cannot be built from {NAMES[base_s]} candles")
        self.base_timeframe = NAMES[base_s]
        self._buckets = [_Bucket(tf, TIMEFRAMES[tf], base_s) for tf in chosen]
        self._last_minute: datetime | None = None

    def add(self, minute: Candle) -> list[BuiltCandle]:
        """Fold one closed base candle; return the candles it closes (shortest timeframe first)."""
        if minute.timeframe != self.base_timeframe:
            raise ValueError(f"expected a {self.base_timeframe} candle, got {minute.timeframe}")
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
    minutes: Iterable[Candle], timeframes: Iterable[str] | None = None, base_s: int = BASE_SECONDS
) -> dict[str, list[BuiltCandle]]:
    """Bulk history through the live code path: closed candles per timeframe, then each partial last."""
    chosen = timeframes_above(base_s) if timeframes is None else tuple(timeframes)
    aggregator = TimeframeAggregator(chosen, base_s)
    result: dict[str, list[BuiltCandle]] = {tf: [] for tf in chosen}
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

"""Market feeds behind one interface.

``ReplayFeed`` replays real 1-minute candles from a CSV file; ``SyntheticFeed`` makes a seeded random walk
for demos without data. Both are pulled by the engine one candle at a time (``next_candle``) and give the
history before their start (``history``) so indicators are warm from the first decision.
"""

from __future__ import annotations

import math
import random
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from shared.marketdata.candles import EPOCH
from shared.marketdata.files import find_problems, read_candles, read_candles_with_lines
from shared.marketdata.funding import FundingRate
from shared.marketdata.interval import detect_interval_s, interval_name
from shared.marketdata.prepared import PreparedMarketState, minute_frame
from shared.marketdata.snapshot import MarketState
from shared.models import Candle

CANDLE_SECONDS = 60


class MarketFeed(ABC):
    """A source of closed 1-minute candles for one symbol."""

    source: str
    symbol: str

    @abstractmethod
    def history(self, count: int) -> list[Candle]:
        """The ``count`` closed candles before the first one ``next_candle`` returns."""

    @abstractmethod
    def next_candle(self) -> Candle:
        """The next closed candle."""

    def poll(self) -> list[Candle]:
        """The candles that closed since the last call (a stepped feed gives exactly one)."""
        return [self.next_candle()]

    @property
    def stale(self) -> bool:
        """True while the feed has stopped delivering data."""
        return False

    def derivatives(self) -> tuple[dict[str, float] | None, FundingRate | None]:
        """Latest order-book metrics and funding, when the source has them (files and synthetic do not)."""
        return None, None

    def market_state(self) -> MarketState:
        """A fresh state for this feed's market (folded minute by minute)."""
        return MarketState(self.symbol, self.source)

    def follow_mark(self) -> None:
        """Someone (a paper exchange) wants the mark-price candles too (``mark_candle``)."""
        return None  # a source without mark prices has nothing to fetch

    def mark_candle(self, open_time: datetime) -> Candle | None:
        """The mark-price candle opening at ``open_time``, when the source has it (a live exchange's)."""
        return None


class CandleSource(Protocol):
    """An exchange's candle endpoint (Bluefin Pro, legacy v2): oldest first, at most a page at a time."""

    last_message_at: float  # monotonic: when its stream last delivered anything

    def candles(
        self,
        symbol: str,
        limit: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        interval: str = "1m",
    ) -> list[Candle]: ...


class ExchangeFeed(MarketFeed):
    """A market polled from an exchange: its history paged backwards and whether it has gone stale. The
    subclasses (``BluefinProFeed``, ``BluefinFeed``) say how to poll."""

    def __init__(self, hub: CandleSource, symbol: str, page: int, stale_after_s: float) -> None:
        self.hub = hub
        self.symbol = symbol
        self.page = page
        self.stale_after_s = stale_after_s
        self._last_emitted: datetime | None = None
        self._last_success = time.monotonic()

    @property
    def stale(self) -> bool:
        latest = max(self._last_success, self.hub.last_message_at)
        return time.monotonic() - latest > self.stale_after_s

    def history(self, count: int) -> list[Candle]:
        """The ``count`` closed candles before now, paged backwards (without an end, the newest candle of
        an answer is still open)."""
        closed: list[Candle] = []
        end_ms: int | None = None
        while len(closed) < count:
            batch = self.hub.candles(self.symbol, min(self.page, count - len(closed) + 1), end_ms=end_ms)
            if end_ms is None:
                batch = batch[:-1]  # the newest is still open
            batch = [c for c in batch if not closed or c.open_time < closed[0].open_time]
            if not batch:
                break
            closed = batch + closed
            end_ms = int(batch[0].open_time.timestamp() * 1000) - 1
        closed = closed[-count:]
        if closed:
            self._last_emitted = closed[-1].open_time
        self._last_success = time.monotonic()
        return closed


def load_candle_csv(path: Path) -> pd.DataFrame:
    """Candles from any file ``shared.marketdata.files`` reads, sorted by time (name kept for callers)."""
    return read_candles(path).sort_values("timestamp").reset_index(drop=True)


class ReplayFeed(MarketFeed):
    """Real candles from a file (CSV, Parquet, Feather or JSON), in order. At the end it starts again from
    the beginning (``wrapped`` counts how often), unless ``loop`` is off (REPLAY_LOOP=false): then it has
    nothing more to give. Gaps in the file stay gaps: no candle is invented. A file
    with bad rows is refused with their line numbers (``bluefinai data import`` cleans one)."""

    source = "replay"

    def __init__(
        self,
        path: Path,
        symbol: str,
        start_index: int = 300,
        start_time: datetime | None = None,
        loop: bool = True,
    ) -> None:
        self.loop = loop  # at the end: start over (a demo that never stops), or stop delivering
        self.path = path
        self.symbol = symbol
        raw, first_line = read_candles_with_lines(path)
        problems = find_problems(raw, first_line)
        if problems:
            shown = "; ".join(f"line {p.line}: {p.message}" for p in problems[:5])
            raise ValueError(
                f"{path}: {len(problems)} bad rows ({shown}); clean it with `bluefinai data import`"
            )
        frame = raw.reset_index(drop=True)
        self._ohlcv = frame[["open", "high", "low", "close", "volume"]].to_numpy(dtype=float)
        since_epoch = frame["timestamp"] - pd.Timestamp("1970-01-01", tz="UTC")
        # when each candle closes (epoch seconds): the market clock after it
        self.open_stamps = (since_epoch // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
        if len(frame) < 2:
            raise ValueError(f"{path}: needs at least 2 candles")
        # the file's interval from its timestamps (the most common step: a real feed misses a few candles)
        self.interval_s = detect_interval_s(self.open_stamps)
        if self.interval_s != CANDLE_SECONDS:
            # the engine folds 1m candles into every timeframe: a 5m file taken as 1m would close every
            # timeframe late and trade at the wrong times, so it is refused rather than mislabelled
            raise ValueError(
                f"{path}: candles every {interval_name(self.interval_s)} (the most common step between "
                f"timestamps); the replay needs 1m candles: give a 1m file"
            )
        self.close_stamps = self.open_stamps + CANDLE_SECONDS
        if start_time is not None:  # the first candle at or after start_time; the ones before are history
            start_index = int(frame["timestamp"].searchsorted(pd.Timestamp(start_time), side="left"))
        self._start = min(max(start_index, 0), len(frame) - 1)
        self.cursor = self._start
        self.wrapped = 0

    def resume_after(self, moment: datetime) -> None:
        """Start with the first candle that closes after ``moment`` (the market time already booked by a
        previous run on the same books): a restart goes on from there instead of rewinding the market clock
        to the file's start (an open position would be stopped by a price from hours before it opened).
        At the end of the file there is nothing more to give (with REPLAY_LOOP the file starts over, as
        after any end)."""
        stamp = int((moment - EPOCH).total_seconds())
        start = int(np.searchsorted(self.close_stamps, stamp, side="right"))
        if start > self._start:
            self._start = self.cursor = start

    def _candle(self, index: int) -> Candle:
        o, h, low, c, v = self._ohlcv[index].tolist()
        return Candle(self.symbol, self._time(index), o, h, low, c, v)

    def _time(self, index: int) -> datetime:
        return EPOCH + timedelta(seconds=int(self.open_stamps[index]))

    def market_state(self) -> MarketState:
        """The file is known in advance: its state is prepared in one vectorised pass (equal results)."""
        times = pd.to_datetime(self.open_stamps, unit="s", utc=True)
        return PreparedMarketState(self.symbol, self.source, minute_frame(times, self._ohlcv))

    def history(self, count: int) -> list[Candle]:
        first = max(0, self._start - count)
        return [self._candle(i) for i in range(first, self._start)]

    def candles(self, start: int, stop: int) -> list[Candle]:
        return [self._candle(i) for i in range(start, stop)]

    @property
    def ohlcv(self) -> np.ndarray:
        """Every candle of the file: open, high, low, close, volume (read-only use)."""
        return self._ohlcv

    @property
    def remaining(self) -> int:
        """Candles left before the file would start over."""
        return len(self._ohlcv) - self.cursor

    def peek_time(self) -> datetime | None:
        """The open time of the candle ``next_candle`` returns (None at the end of the file)."""
        return self._time(self.cursor) if self.cursor < len(self._ohlcv) else None

    def poll(self) -> list[Candle]:
        if not self.loop and self.cursor >= len(self._ohlcv):
            return []  # played once, to the end
        return [self.next_candle()]

    def next_candle(self) -> Candle:
        if self.cursor >= len(self._ohlcv):
            self.cursor = 0
            self.wrapped += 1
        candle = self._candle(self.cursor)
        self.cursor += 1
        return candle


class SyntheticFeed(MarketFeed):
    """A seeded geometric random walk with volatility regimes (calm, normal, wild, switching about every
    100 candles) and rare jumps (about one candle in 500 moves 2-6 %); for demos only, always labelled
    as synthetic. The same seed and symbol give the same path."""

    source = "synthetic"

    def __init__(self, symbol: str, seed: int = 7, start_price: float = 50_000.0) -> None:
        self.symbol = symbol
        self._rng = random.Random(f"{seed}:{symbol}")
        self._price = start_price
        self._time = datetime(2024, 1, 1, tzinfo=UTC)
        self._vol = 0.0008

    def _step(self) -> Candle:
        if self._rng.random() < 0.01:
            self._vol = self._rng.choice((0.0004, 0.0008, 0.002))
        open_ = self._price
        path = [open_]
        for _ in range(4):
            path.append(path[-1] * math.exp(self._rng.gauss(0, self._vol / 2)))
        if self._rng.random() < 0.002:  # a jump
            path.append(path[-1] * math.exp(self._rng.choice((-1, 1)) * self._rng.uniform(0.02, 0.06)))
        close = path[-1]
        candle = Candle(
            self.symbol, self._time, open_, max(path), min(path), close, abs(self._rng.gauss(50, 20))
        )
        self._price = close
        self._time += timedelta(seconds=CANDLE_SECONDS)
        return candle

    def history(self, count: int) -> list[Candle]:
        return [self._step() for _ in range(count)]

    def next_candle(self) -> Candle:
        return self._step()

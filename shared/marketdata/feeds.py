"""Market feeds behind one interface.

``ReplayFeed`` replays real candles of any interval (1m, 5m, 1h ...) from a file; ``SyntheticFeed`` makes a
seeded random walk for demos without data. Both are pulled by the engine one candle at a time
(``next_candle``) and give the history before their start (``history``) so indicators are warm from the first
decision.
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

from shared.marketdata.candles import BASE_SECONDS, EPOCH, NAMES, TIMEFRAMES
from shared.marketdata.files import find_problems, read_candles, read_candles_with_lines
from shared.marketdata.funding import FundingRate
from shared.marketdata.interval import detect_interval_s, interval_name
from shared.marketdata.prepared import PreparedMarketState, candle_frame
from shared.marketdata.snapshot import MarketState
from shared.models import Candle

CANDLE_SECONDS = BASE_SECONDS  # the candles of a live feed and of the synthetic walk
DAY_S = 86_400


class MarketFeed(ABC):
    """A source of closed candles of one interval (``interval_s``: 1m unless a file says otherwise) for one
    symbol."""

    source: str
    symbol: str
    interval_s: int = CANDLE_SECONDS
    wrapped: int = 0  # how often the data started over (a looping replay); its times always move on

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
        """A fresh state for this feed's market (folded candle by candle)."""
        return MarketState(self.symbol, self.source, self.interval_s)

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
    """Real candles from a file (CSV, Parquet, Feather or JSON), in order, at the file's own interval
    (detected from its timestamps: 1m, 5m, 15m, 1h, 4h or 1d; any other is refused). At the end it starts
    again from the beginning (``wrapped`` counts how often) with its times moved on by whole days past the
    end, so the market clock never goes back; unless ``loop`` is off (REPLAY_LOOP=false): then it has
    nothing more to give. Gaps in the file stay gaps: no candle is invented. A file with bad rows is refused
    with their line numbers (``bluefinai data import`` cleans one)."""

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
        self._ohlcv: np.ndarray = frame[["open", "high", "low", "close", "volume"]].to_numpy(dtype=float)
        since_epoch = frame["timestamp"] - pd.Timestamp("1970-01-01", tz="UTC")
        # when each candle closes (epoch seconds): the market clock after it
        self.open_stamps = (since_epoch // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
        if len(frame) < 2:
            raise ValueError(f"{path}: needs at least 2 candles")
        # the file's interval from its timestamps (the most common step: a real feed misses a few candles)
        self.interval_s = detect_interval_s(self.open_stamps)
        if self.interval_s not in NAMES:
            raise ValueError(
                f"{path}: candles every {interval_name(self.interval_s)} (the most common step between "
                f"timestamps); a replay takes candles of {', '.join(TIMEFRAMES)}"
            )
        self.timeframe = NAMES[self.interval_s]
        off_grid = self.open_stamps % self.interval_s != 0
        if off_grid.any():
            first = int(np.flatnonzero(off_grid)[0])
            raise ValueError(
                f"{path}: the candle at {frame['timestamp'].iloc[first]} does not open on a "
                f"{self.timeframe} boundary (UTC); every candle of a {self.timeframe} file must"
            )
        self.close_stamps = self.open_stamps + self.interval_s
        # a loop starts over this much later (whole days, so every timeframe's buckets stay aligned)
        span = int(self.close_stamps[-1] - self.open_stamps[0])
        self.loop_shift_s = -(-span // DAY_S) * DAY_S
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
        if self.loop and stamp >= self.close_stamps[-1]:  # booked into a later pass of the loop
            self.wrapped = int((stamp - self.open_stamps[0]) // self.loop_shift_s)
            stamp -= self.wrapped * self.loop_shift_s
            self._start = 0
        start = int(np.searchsorted(self.close_stamps, stamp, side="right"))
        if start > self._start or self.wrapped:
            self._start = self.cursor = start

    def _candle(self, index: int) -> Candle:
        o, h, low, c, v = self._ohlcv[index].tolist()
        return Candle(self.symbol, self._time(index), o, h, low, c, v, self.timeframe)

    @property
    def shift_s(self) -> int:
        """How far this pass of the loop is moved on from the file's own times (0 on the first pass)."""
        return self.wrapped * self.loop_shift_s

    def _time(self, index: int) -> datetime:
        return EPOCH + timedelta(seconds=int(self.open_stamps[index]) + self.shift_s)

    def market_state(self) -> MarketState:
        """The file is known in advance: its state is prepared in one vectorised pass (equal results), at
        the times of the current pass of the loop."""
        times = pd.to_datetime(self.open_stamps + self.shift_s, unit="s", utc=True)
        return PreparedMarketState(
            self.symbol, self.source, candle_frame(times, self._ohlcv), self.interval_s
        )

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

    def __init__(
        self, symbol: str, seed: int = 7, start_price: float = 50_000.0, interval_s: int = CANDLE_SECONDS
    ) -> None:
        if interval_s not in NAMES:
            raise ValueError(f"no timeframe of {interval_s} s (known: {', '.join(TIMEFRAMES)})")
        self.symbol = symbol
        self.interval_s = interval_s  # beside a coarser replay file, candles of its interval
        self._timeframe = NAMES[interval_s]
        self._scale = math.sqrt(interval_s / CANDLE_SECONDS)  # the same volatility per unit of time
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
            path.append(path[-1] * math.exp(self._rng.gauss(0, self._vol * self._scale / 2)))
        if self._rng.random() < 0.002:  # a jump
            path.append(path[-1] * math.exp(self._rng.choice((-1, 1)) * self._rng.uniform(0.02, 0.06)))
        close = path[-1]
        volume = abs(self._rng.gauss(50, 20)) * self._scale**2
        candle = Candle(self.symbol, self._time, open_, max(path), min(path), close, volume, self._timeframe)
        self._price = close
        self._time += timedelta(seconds=self.interval_s)
        return candle

    def history(self, count: int) -> list[Candle]:
        return [self._step() for _ in range(count)]

    def next_candle(self) -> Candle:
        return self._step()

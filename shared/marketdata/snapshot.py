"""``MarketState`` keeps one symbol's view across timeframes; ``MarketSnapshot`` is what analysts get.

Every closed base candle (1m live; a candle file's own interval in a replay) goes through the
multi-timeframe aggregator; each closed candle of a timeframe is folded into that timeframe's incremental
indicators. Partial (still open) candles are shown separately and never reach the indicators. Timeframes
below the base do not exist here: they are not in the snapshot, and reading one gives NaN / "unknown".
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from shared.indicators import IncrementalIndicators
from shared.market_structure import Level, support_resistance, trend_regime
from shared.marketdata.candles import BASE_SECONDS, NAMES, BuiltCandle, TimeframeAggregator, timeframes_above
from shared.marketdata.funding import FundingRate
from shared.models import Candle

RECENT_CANDLES = 500  # per timeframe, for levels


@dataclass(frozen=True)
class TimeframeView:
    timeframe: str
    last_closed: Candle | None
    partial: Candle | None
    indicators: dict[str, float]
    trend: str
    candles: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "timeframe": self.timeframe,
            "last_close": self.last_closed.close if self.last_closed else None,
            "last_closed_at": self.last_closed.open_time.isoformat() if self.last_closed else None,
            "partial_close": self.partial.close if self.partial else None,
            "trend": self.trend,
            "candles": self.candles,
            "indicators": {k: (None if not math.isfinite(v) else v) for k, v in self.indicators.items()},
        }


@dataclass(frozen=True)
class MarketSnapshot:
    symbol: str
    time: datetime | None
    price: float | None
    source: str
    timeframes: dict[str, TimeframeView]
    levels: list[Level] = field(default_factory=list)
    book: dict[str, float] | None = None
    funding: FundingRate | None = None
    stale: bool = False

    @property
    def base(self) -> TimeframeView | None:
        """The shortest timeframe shown: the base candles' (1m unless the data is coarser)."""
        return next(iter(self.timeframes.values()), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "time": self.time.isoformat() if self.time else None,
            "price": self.price,
            "source": self.source,
            "stale": self.stale,
            "timeframes": {tf: view.as_dict() for tf, view in self.timeframes.items()},
            "levels": [
                {
                    "price": lv.price,
                    "kind": lv.kind,
                    "touches": lv.touches,
                    "last_touch": lv.last_touch.isoformat(),
                }
                for lv in self.levels
            ],
            "book": self.book,
            "funding": None
            if self.funding is None
            else {
                "rate": self.funding.rate,
                "annualised": self.funding.annualised,
                "predicted": self.funding.predicted,
                "open_interest": self.funding.open_interest,
                "time": self.funding.time.isoformat(),
            },
        }


class MarketState:
    """One symbol across every timeframe its base candles (``base_s`` seconds) build."""

    def __init__(self, symbol: str, source: str, base_s: int = BASE_SECONDS) -> None:
        self.symbol = symbol
        self.source = source
        self.base_s = base_s
        self.base_timeframe = NAMES[base_s]
        self.timeframes = timeframes = timeframes_above(base_s)
        self._aggregator = TimeframeAggregator(timeframes, base_s)
        self._indicators = {tf: IncrementalIndicators() for tf in timeframes}
        self._latest: dict[str, dict[str, float]] = {tf: {} for tf in timeframes}
        self._recent: dict[str, deque[Candle]] = {tf: deque(maxlen=RECENT_CANDLES) for tf in timeframes}
        # the indicators as they were on each of those candles (the charts draw EMA and bands along them)
        self._recent_indicators: dict[str, deque[dict[str, float]]] = {
            tf: deque(maxlen=RECENT_CANDLES) for tf in timeframes
        }
        self._counts = dict.fromkeys(timeframes, 0)
        # support and resistance from 15m candles, or the base ones when the data is coarser
        self.levels_timeframe = "15m" if "15m" in timeframes else self.base_timeframe
        self.price: float | None = None
        self.time: datetime | None = None
        self.book: dict[str, float] | None = None
        self.funding: FundingRate | None = None
        self.stale = False
        self._changes = 0  # candles taken: a snapshot is built again only after one (or a new book)
        self._snapshot: tuple[tuple[Any, ...], MarketSnapshot] | None = None

    def add_candle(self, candle: Candle) -> list[BuiltCandle]:
        closed = self._aggregator.add(candle)
        for built in closed:
            tf = built.candle.timeframe
            c = built.candle
            self._latest[tf] = self._indicators[tf].update(c.open, c.high, c.low, c.close, c.volume)
            self._recent[tf].append(c)
            self._recent_indicators[tf].append(self._latest[tf])
            self._counts[tf] += 1
        self.price, self.time = candle.close, candle.open_time
        self._changes += 1
        return closed

    def indicator(self, timeframe: str, name: str) -> float:
        """The latest value of one indicator on the last closed candle of a timeframe (NaN if unknown or
        below the base candles)."""
        return self._latest.get(timeframe, {}).get(name, math.nan)

    def indicators(self, timeframe: str) -> dict[str, float]:
        return dict(self._latest.get(timeframe, {}))

    def recent(self, timeframe: str, limit: int = RECENT_CANDLES) -> list[tuple[Candle, dict[str, float]]]:
        """The last ``limit`` closed candles of a timeframe (at most RECENT_CANDLES), oldest first, each with
        a copy of its indicators as they were when it closed (empty for an unknown timeframe)."""
        candles = list(self._recent.get(timeframe, ()))[-limit:] if limit > 0 else []
        values = list(self._recent_indicators.get(timeframe, ()))[-len(candles) :] if candles else []
        return [(candle, dict(indicators)) for candle, indicators in zip(candles, values, strict=True)]

    def closes(self, timeframe: str) -> pd.Series:
        """Closes of the recent closed candles of a timeframe (at most RECENT_CANDLES), by open time."""
        recent = self._recent.get(timeframe, ())
        return pd.Series(
            [c.close for c in recent], index=pd.DatetimeIndex([c.open_time for c in recent]), dtype=float
        )

    def trend(self, timeframe: str) -> str:
        latest = self._latest.get(timeframe)
        return trend_regime(pd.Series(latest)) if latest else "unknown"

    def levels(self, timeframe: str | None = None) -> list[Level]:
        recent = self._recent.get(timeframe or self.levels_timeframe, ())
        if len(recent) < 20:
            return []
        frame = pd.DataFrame(
            {
                "high": [c.high for c in recent],
                "low": [c.low for c in recent],
                "close": [c.close for c in recent],
            },
            index=pd.DatetimeIndex([c.open_time for c in recent]),
        )
        return support_resistance(frame)

    def snapshot(self) -> MarketSnapshot:
        """The market as an analyst reads it. Built once per state: every decision and every shadow
        analyst between two candles reads the same one (nothing writes to a snapshot)."""
        # the book and funding by identity: the engine sets new ones, and the cached snapshot holds the old
        # ones, so a new object cannot reuse their ids
        key = (self._changes, self.stale, id(self.book), id(self.funding))
        cached = self._snapshot
        if cached is not None and cached[0] == key:
            return cached[1]
        snapshot = self._build_snapshot()
        self._snapshot = (key, snapshot)
        return snapshot

    def _build_snapshot(self) -> MarketSnapshot:
        partials = self._aggregator.partials()
        views = {}
        for tf in self.timeframes:
            recent = self._recent[tf]
            latest = self._latest[tf]
            partial = partials.get(tf)
            views[tf] = TimeframeView(
                tf, recent[-1] if recent else None, partial.candle if partial else None, dict(latest),
                trend_regime(pd.Series(latest)) if latest else "unknown", self._counts[tf],
            )  # fmt: skip
        return MarketSnapshot(
            self.symbol,
            self.time,
            self.price,
            self.source,
            views,
            self.levels(),
            self.book,
            self.funding,
            self.stale,
        )

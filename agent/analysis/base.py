"""The ``Analyst`` port and the market context every analyst receives."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from shared.marketdata.snapshot import MarketSnapshot
from shared.models import Decision, Position, Signal


@dataclass(frozen=True)
class MarketContext:
    symbol: str
    price: float
    candles: pd.DataFrame  # recent closed base candles: open high low close volume, UTC index
    position: Position
    snapshot: MarketSnapshot | None = None  # every timeframe, levels, book and funding, when known
    portfolio: tuple[Position, ...] = ()  # every open position, all markets
    limits: Mapping[str, Any] = field(default_factory=dict)  # the risk limits and trading state
    track_record: Mapping[str, Any] | None = None  # this analyst's outcomes (agent.analysis.track_record)
    candles_timeframe: str = "1m"  # what ``candles`` are: 1m, or a candle file's coarser interval


class Analyst(ABC):
    name: str
    wants_track_record = False  # AI analysts read their own record in the prompt; the rules analyst does not
    reads_market = True  # False: the analyst decides from the signal alone (no snapshot is built for it)
    # True: decides in this process in milliseconds, with no network call, so the engine may hold its order
    # lock while it thinks (one read of the books serves the decision and the risk check)
    local = False

    @abstractmethod
    def decide(self, signal: Signal, context: MarketContext) -> Decision:
        """A validated decision for the signal. Raises on failure; never returns an invalid decision."""

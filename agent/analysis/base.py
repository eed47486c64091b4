"""The ``Analyst`` port and the market context every analyst receives."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import pandas as pd

from shared.marketdata.snapshot import MarketSnapshot
from shared.models import Decision, Position, Signal


@dataclass(frozen=True)
class MarketContext:
    symbol: str
    price: float
    candles: pd.DataFrame  # recent closed 1m candles: open high low close volume, UTC index
    position: Position
    snapshot: MarketSnapshot | None = None  # every timeframe, levels, book and funding, when known


class Analyst(ABC):
    name: str

    @abstractmethod
    def decide(self, signal: Signal, context: MarketContext) -> Decision:
        """A validated decision for the signal. Raises on failure; never returns an invalid decision."""

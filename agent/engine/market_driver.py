"""The market driver: feeds a simulated venue the market data it trades against.

A simulated exchange (``shared.exchange.simulated.SimulatedVenue``) is driven by data, not by our orders:
each closed candle, its mark candle and the market's funding rate are handed to it here, once per candle,
and what it did on its own (liquidations, funding settled) is asked of it here. For a real exchange,
which follows its own market, every call is a no-op and nothing is pending.
"""

from __future__ import annotations

from datetime import datetime

from shared.exchange.base import Exchange, FundingPayment
from shared.exchange.simulated import SimulatedVenue
from shared.marketdata.funding import FundingRate
from shared.models import Candle, OrderResult


class MarketDriver:
    """Drives the engine's exchange when it is a simulated venue; does nothing for a real one."""

    def __init__(self, exchange: Exchange) -> None:
        self.venue: SimulatedVenue | None = exchange.simulated_venue()

    @property
    def simulated(self) -> bool:
        """Is the exchange driven by our market data (so stops and funding follow the mark we feed)?"""
        return self.venue is not None

    def booked_until(self) -> datetime | None:
        """The market time a simulated venue has booked up to (None for a real exchange)."""
        return self.venue.booked_until() if self.venue is not None else None

    def on_candle(self, candle: Candle, close_time: datetime, mark: Candle | None) -> None:
        """One closed candle (and the mark candle of the same minute, if any) reaches the venue."""
        if self.venue is None:
            return
        if mark is not None:
            self.venue.add_mark_candle(
                candle.symbol, close_time, (mark.open, mark.high, mark.low, mark.close)
            )
        self.venue.on_price(candle.symbol, candle.close, close_time, candle.high, candle.low, candle.open)

    def on_funding(self, rate: FundingRate) -> None:
        """The market's current funding rate, settled by the venue at its funding times."""
        if self.venue is not None:
            self.venue.set_funding_rate(rate)

    def advance(self, symbol: str, price: float, time: datetime) -> None:
        """A run of quiet candles skipped in one go ends at ``price`` and ``time`` (backtests)."""
        if self.venue is not None:
            self.venue.advance(symbol, price, time)

    @property
    def liquidations_pending(self) -> bool:
        return self.venue is not None and self.venue.liquidations_pending

    @property
    def funding_pending(self) -> bool:
        return self.venue is not None and self.venue.funding_pending

    def expected_funding_rate(self, symbol: str) -> float | None:
        """The simulated venue's expected next funding rate of ``symbol`` (None for a real exchange)."""
        return self.venue.expected_funding_rate(symbol) if self.venue is not None else None

    def drain_liquidations(self) -> list[OrderResult]:
        return self.venue.drain_liquidations() if self.venue is not None else []

    def drain_funding(self) -> list[FundingPayment]:
        return self.venue.drain_funding() if self.venue is not None else []

    def ledger_total(self, kind: str | None = None) -> float:
        """The venue's ledger total (of one kind); 0 for a real exchange (its funding is booked apart)."""
        return self.venue.ledger_total(kind) if self.venue is not None else 0.0

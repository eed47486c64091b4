"""The ``SimulatedVenue`` port: what a simulated exchange offers beyond ``Exchange``.

A simulated venue (the paper exchange) has no market of its own: it is driven by data, the candles, mark
prices and funding rates the engine reads, and it fills, triggers, liquidates and settles funding against
them (``agent.engine.market_driver`` feeds it). A real exchange is no simulated venue:
``Exchange.simulated_venue()`` is None for it. The backtest's fast-forward reads the quiet-candle methods.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from shared.exchange.base import FundingPayment
from shared.marketdata.funding import FundingRate
from shared.models import OrderResult


class SimulatedVenue(Protocol):
    """What the engine, its market driver and the backtest need of a simulated exchange."""

    revision: int  # bumped by every change of orders, fills, positions or balance

    # --- market data fed in (``agent.engine.market_driver``) ---------------------------------------------
    def on_price(
        self,
        symbol: str,
        price: float,
        time: datetime,
        high: float | None = None,
        low: float | None = None,
        open_: float | None = None,
    ) -> None:
        """A candle's close (with its high, low and open): funding, triggers, fills and liquidations."""
        ...

    def add_mark_candle(
        self, symbol: str, close_time: datetime, ohlc: tuple[float, float, float, float]
    ) -> None:
        """One more mark-price candle, closing at ``close_time``."""
        ...

    def set_funding_rate(self, rate: FundingRate) -> None:
        """The market's funding rate as of now (settled at the next funding time)."""
        ...

    def expected_funding_rate(self, symbol: str) -> float | None:
        """The rate the next settlement of ``symbol`` is expected at (None: no rate known)."""
        ...

    def booked_until(self) -> datetime | None:
        """The market time of the latest thing booked (a restarted replay goes on after it)."""
        ...

    # --- what happened on its own, for the owner's books ----------------------------------------------------
    @property
    def liquidations_pending(self) -> bool: ...

    @property
    def funding_pending(self) -> bool: ...

    def drain_liquidations(self) -> list[OrderResult]:
        """Liquidations since the last call, as filled reduce-only orders."""
        ...

    def drain_funding(self) -> list[FundingPayment]:
        """Funding settled on positions since the last call."""
        ...

    def ledger_total(self, kind: str | None = None) -> float:
        """The sum of the ledger's entries (of one kind: ``funding``, ``fee``...)."""
        ...

    # --- fast-forward of quiet candles (backtests) -------------------------------------------------------
    def quiet_band(self, symbol: str) -> tuple[float, float]:
        """(up, down): a candle reaching either may trigger, fill or liquidate something."""
        ...

    def mark_extremes(self, symbol: str, close_stamps: Any) -> Any:
        """(high, low) of the mark candle closing at each of ``close_stamps``; None without mark series."""
        ...

    def funding_event(self) -> datetime | None:
        """When the next funding settlement could move money (None: never, as things stand)."""
        ...

    def advance(self, symbol: str, price: float, time: datetime) -> None:
        """A run of quiet candles ends at ``price`` and ``time``."""
        ...

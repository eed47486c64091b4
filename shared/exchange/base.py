"""The ``Exchange`` port: what the engine needs from any exchange (paper or Bluefin).

Errors (``shared.errors``) tell the caller what to do: ``Rejected`` is final; ``Temporary`` means retry a
read or a cancel with backoff; ``UnknownOutcome`` means the order may exist: reconcile by client id,
never resend; ``Fatal`` means stop trading.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from shared.marketdata.funding import FundingRate
from shared.marketdata.orderbook import OrderBook
from shared.models import OrderRequest, OrderResult, Position


@dataclass(frozen=True)
class Account:
    balance: float  # collateral incl. realised PnL, fees and funding
    equity: float  # balance + unrealised PnL
    unrealized_pnl: float
    fees_paid: float
    margin_used: float = 0.0

    @property
    def free_collateral(self) -> float:
        return self.balance - self.margin_used


@dataclass(frozen=True)
class ExchangePosition:
    """A position as the exchange reports it, with its isolated margin and liquidation price."""

    position: Position
    leverage: float
    margin: float
    liquidation_price: float | None


class Exchange(ABC):
    name: str

    @abstractmethod
    def place_order(self, request: OrderRequest) -> OrderResult:
        """Place an order. Raises Rejected (final), UnknownOutcome (reconcile by client id) or Temporary."""

    @abstractmethod
    def cancel_order(self, client_id: str) -> OrderResult:
        """Cancel an open order. Raises Rejected when it is not open (already filled or unknown)."""

    @abstractmethod
    def get_order(self, client_id: str) -> OrderResult | None:
        """Look an order up by our client id; None when the exchange has never seen it."""

    @abstractmethod
    def open_orders(self, symbol: str | None = None) -> list[OrderResult]: ...

    @abstractmethod
    def positions(self) -> list[Position]:
        """Open positions as the exchange sees them."""

    @abstractmethod
    def account(self) -> Account: ...

    @abstractmethod
    def set_leverage(self, symbol: str, leverage: float) -> None: ...

    @abstractmethod
    def funding_rate(self, symbol: str) -> FundingRate | None: ...

    @abstractmethod
    def orderbook(self, symbol: str) -> OrderBook | None: ...

    @abstractmethod
    def mark_price(self, symbol: str) -> float | None: ...

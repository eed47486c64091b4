"""The ``Exchange`` port: what the engine needs from any exchange (paper or Bluefin)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from shared.models import OrderRequest, OrderResult, Position


@dataclass(frozen=True)
class Account:
    balance: float  # collateral incl. realised PnL, less fees
    equity: float  # balance + unrealised PnL
    unrealized_pnl: float
    fees_paid: float


class Exchange(ABC):
    name: str

    @abstractmethod
    def place_order(self, request: OrderRequest) -> OrderResult:
        """Place an order. Raises Rejected (final), UnknownOutcome (reconcile by client id) or Temporary."""

    @abstractmethod
    def get_order(self, client_id: str) -> OrderResult | None:
        """Look an order up by our client id; None when the exchange has never seen it."""

    @abstractmethod
    def positions(self) -> list[Position]:
        """Open positions as the exchange sees them."""

    @abstractmethod
    def account(self) -> Account: ...

    @abstractmethod
    def mark_price(self, symbol: str) -> float | None: ...

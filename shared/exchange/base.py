"""The ``Exchange`` port: what the engine needs from any exchange (paper or Bluefin).

Errors (``shared.errors``) tell the caller what to do: ``Rejected`` is final; ``Temporary`` means retry a
read or a cancel with backoff; ``UnknownOutcome`` means the order may exist: reconcile by client id,
never resend; ``Fatal`` means stop trading.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from shared.exchange.markets import MarketSpec, generic_spec
from shared.marketdata.funding import FundingRate
from shared.marketdata.orderbook import OrderBook
from shared.models import OrderRequest, OrderResult, Position, Side

if TYPE_CHECKING:
    from shared.exchange.simulated import SimulatedVenue


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


@dataclass(frozen=True)
class OrderRef:
    """What our books know of one of our orders, for an exchange that cannot find an order by client id
    alone (Bluefin Pro looks in the market's open orders and trades since the order was made)."""

    client_id: str
    symbol: str
    side: Side
    quantity: float
    exchange_id: str | None  # the exchange's id (Bluefin Pro: the order hash), once known
    acknowledged: bool  # the exchange answered its placement: it exists or existed there
    since: datetime  # when it was committed: look-ups need not look further back
    has_trigger: bool = False  # a stop or take-profit (Bluefin Pro keeps those apart until they trigger)


@dataclass(frozen=True)
class FundingPayment:
    """One funding settlement of one of our positions, as the exchange booked it."""

    key: str  # unique per payment (market and settlement time)
    symbol: str
    amount: float  # to the account: negative = the position paid
    rate: float  # the settlement's rate
    side: str  # the position's side (LONG | SHORT)
    time: datetime


@dataclass(frozen=True)
class PreparedOrder:
    """An order signed ahead of sending: what identifies it on the exchange and until when it can exist."""

    exchange_id: str  # Bluefin Pro: the order hash
    signed_at: datetime
    expires_at: datetime


class Exchange(ABC):
    name: str
    # True when the exchange signs orders with an expiry (``prepare_order``): an order committed but never
    # seen by the exchange is settled as never placed once that expiry has passed (see OrderExecutor)
    signs_ahead: bool = False

    @abstractmethod
    def place_order(self, request: OrderRequest) -> OrderResult:
        """Place an order. Raises Rejected (final), UnknownOutcome (reconcile by client id) or Temporary."""

    @abstractmethod
    def cancel_order(self, client_id: str, ref: OrderRef | None = None) -> OrderResult:
        """Cancel an open order. Raises Rejected when it is not open (already filled or unknown)."""

    @abstractmethod
    def get_order(self, client_id: str, ref: OrderRef | None = None) -> OrderResult | None:
        """Look an order up by our client id; None when the exchange has never seen it."""

    def prepare_order(self, request: OrderRequest) -> PreparedOrder | None:
        """Sign the order ahead of ``place_order`` and say what identifies it there (recorded before it is
        sent); None for an exchange that signs nothing ahead."""
        return None

    def funding_payments(self, since: datetime) -> list[FundingPayment]:
        """Funding the exchange settled on our positions since ``since``, oldest first (an exchange whose
        funding is already in its own books, like the paper exchange's ledger, has none to report)."""
        return []

    def expected_slippage_bps(self, symbol: str) -> float:
        """What a market order is expected to pay beyond the mark, in basis points (sizing counts it)."""
        return 0.0

    def market_spec(self, symbol: str) -> MarketSpec:
        """Tick, step, limits and margin ratios of a market (``shared.exchange.markets``)."""
        return generic_spec(symbol)

    # --- what changed on its own (fills, triggers, cancels): exchanges that track it say so -----------------
    revision: int | None = None  # bumped whenever something changed; None: the exchange does not track it

    def drain_changed_orders(self) -> set[str] | None:
        """Client ids of the orders that changed on their own since the last call; None: not known, look
        at every unresolved order."""
        return None

    @property
    def changes_pending(self) -> bool:
        """Did an order change on its own since the last ``drain_changed_orders``? True when the exchange
        cannot tell (it must be looked at)."""
        return True

    def set_listener(self, listener: Callable[[], None]) -> None:  # noqa: B027 (optional: most need none)
        """``listener`` is called (from any thread) whenever the exchange reports a change on its own."""

    def simulated_venue(self) -> SimulatedVenue | None:
        """This exchange as a simulated venue, driven by the market data the engine feeds it
        (``shared.exchange.simulated``); None for a real exchange."""
        return None

    def refresh_cancel_on_disconnect(self, countdown_ms: int = 60_000) -> list[str]:
        """Push the exchange's dead man's switch forward: if no refresh follows within ``countdown_ms``,
        it cancels our open orders (Bluefin); the markets whose timer was reset (none on an exchange
        without one)."""
        return []

    def exchange_positions(self) -> list[ExchangePosition]:
        """Open positions with their margin and liquidation price, where the exchange reports them (empty
        where it does not: the risk report then estimates the liquidation price)."""
        return []

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

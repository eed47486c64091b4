"""Domain types shared by every service. Plain dataclasses: no I/O, no framework."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class SignalAction(StrEnum):
    BUY = "buy"
    SELL = "sell"
    CLOSE = "close"


class SignalStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class DecisionAction(StrEnum):
    OPEN_LONG = "open_long"
    OPEN_SHORT = "open_short"
    CLOSE = "close"
    HOLD = "hold"


class OrderStatus(StrEnum):
    PENDING_SUBMIT = "PENDING_SUBMIT"
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    LOST = "LOST"

    @property
    def is_final(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.LOST)


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


@dataclass(frozen=True)
class Candle:
    symbol: str
    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    timeframe: str = "1m"


@dataclass(frozen=True)
class Signal:
    """A normalised trading signal (from TradingView or the platform's own analysis)."""

    idempotency_key: str
    source: str
    symbol: str
    action: SignalAction
    price: float | None = None
    timeframe: str | None = None
    strategy: str | None = None
    confidence: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    alert_time: datetime | None = None
    raw: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    action: DecisionAction
    confidence: float
    rationale: str
    analyst: str
    stop_loss: float | None = None
    take_profit: float | None = None
    factors: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderRequest:
    client_id: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType = OrderType.MARKET
    price: float | None = None
    reduce_only: bool = False
    leverage: float = 1.0


@dataclass(frozen=True)
class Fill:
    trade_id: str
    client_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    time: datetime


@dataclass(frozen=True)
class OrderResult:
    client_id: str
    exchange_id: str
    status: OrderStatus
    filled_quantity: float
    average_price: float | None
    fills: tuple[Fill, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class Position:
    symbol: str
    quantity: float  # signed: > 0 long, < 0 short
    entry_price: float
    realized_pnl: float = 0.0

    @property
    def side(self) -> Side | None:
        if self.quantity > 0:
            return Side.BUY
        if self.quantity < 0:
            return Side.SELL
        return None

    def unrealized_pnl(self, mark: float) -> float:
        return (mark - self.entry_price) * self.quantity


@dataclass(frozen=True)
class Trade:
    """A closed round trip (or the closed part of one)."""

    symbol: str
    side: Side
    quantity: float
    entry_price: float
    exit_price: float
    pnl: float
    fees: float
    opened_at: datetime
    closed_at: datetime
    exit_reason: str

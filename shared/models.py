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
    LOST = "LOST"  # the exchange did not know it after repeated look-ups: never resent, a human must look
    EXTERNAL = "EXTERNAL"  # found on the exchange, not placed by us

    @property
    def is_final(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.LOST)


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_MARKET = "STOP_MARKET"
    STOP_LIMIT = "STOP_LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"  # a market order triggered when price reaches the target
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"  # a limit order triggered when price reaches the target

    @property
    def has_trigger(self) -> bool:
        return self in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT,
                        OrderType.TAKE_PROFIT_LIMIT)  # fmt: skip

    @property
    def has_limit(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)

    @property
    def is_take_profit(self) -> bool:
        """Triggered as the price reaches a target (a sell from below, a buy from above), not a stop."""
        return self in (OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT)


class TimeInForce(StrEnum):
    GTT = "GTT"  # good till time (until cancelled or expired)
    IOC = "IOC"  # immediate or cancel: fill what is possible now, cancel the rest
    FOK = "FOK"  # fill or kill: all now, or nothing


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
    take_profit: float | None = None  # the final target (the first of an AI's take_profits)
    factors: dict[str, float] = field(default_factory=dict)
    # what an AI analyst proposed beyond that: recorded with the decision; the leverage is used (capped by
    # risk); entries are placed at market (a proposed limit price is kept for the record)
    entry_type: str = "market"
    entry_price: float | None = None
    take_profits: tuple[float, ...] = ()
    leverage: float | None = None
    time_horizon: str = ""

    def proposal(self) -> dict[str, object]:
        return {
            "entry_type": self.entry_type, "entry_price": self.entry_price,
            "take_profits": list(self.take_profits), "leverage": self.leverage,
            "time_horizon": self.time_horizon,
        }  # fmt: skip


@dataclass(frozen=True)
class OrderRequest:
    """An order as the engine asks for it. Invariants are checked here, where the order is created."""

    client_id: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType = OrderType.MARKET
    price: float | None = None  # limit price (LIMIT, STOP_LIMIT)
    trigger_price: float | None = None  # STOP_MARKET, STOP_LIMIT, TAKE_PROFIT
    time_in_force: TimeInForce = TimeInForce.GTT
    post_only: bool = False
    reduce_only: bool = False
    leverage: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if not (self.quantity > 0):
            problems.append("quantity must be positive")
        if self.order_type.has_limit and not (self.price is not None and self.price > 0):
            problems.append(f"{self.order_type} needs a positive price")
        if not self.order_type.has_limit and self.price is not None:
            problems.append(f"{self.order_type} takes no price")
        if self.order_type.has_trigger and not (self.trigger_price is not None and self.trigger_price > 0):
            problems.append(f"{self.order_type} needs a positive trigger_price")
        if not self.order_type.has_trigger and self.trigger_price is not None:
            problems.append(f"{self.order_type} takes no trigger_price")
        if self.post_only and self.order_type is not OrderType.LIMIT:
            problems.append("post_only applies to LIMIT orders only")
        if self.post_only and self.time_in_force is not TimeInForce.GTT:
            problems.append("post_only orders must be GTT")
        if not (1 <= self.leverage <= 50):
            problems.append("leverage must be from 1 to 50")
        if problems:
            raise ValueError("; ".join(problems))


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
    cumulative: bool = False  # the order's total fill so far rather than one execution
    forfeited: float = 0.0  # margin lost to the insurance fund with this fill (a liquidation's)


@dataclass(frozen=True)
class OrderResult:
    client_id: str
    exchange_id: str
    status: OrderStatus
    filled_quantity: float
    average_price: float | None
    fills: tuple[Fill, ...] = ()
    reason: str | None = None
    symbol: str = ""
    side: Side | None = None
    quantity: float = 0.0
    order_type: OrderType | None = None


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

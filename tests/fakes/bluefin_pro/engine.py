"""The simulated exchange: accounts, isolated-margin positions, orders, matching, fees, funding, liquidation.

It is plain synchronous code (the server runs it on its event loop thread). Every change appends events
to ``outbox`` (account frames already rendered; market changes as ``MarketTick``/``MarketTrade``), which
the server drains and sends to the subscribed streams.

Rules (see the package docstring for the full list):
- The market price of a symbol is the close of its open candle (or the ``set_price`` override).
- Takers fill at the market price (taker fee), up to ``liquidity[symbol]`` per order and price step.
  Resting limits fill at their own price (maker fee) when the price reaches them.
- Margin is isolated for every position: notional / the account's leverage for the market.
- Wallet ``balance`` changes only by realised PnL, fees, funding and deposits; margin is reserved from it.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.bluefin_pro import render
from tests.fakes.bluefin_pro.market import (
    E9,
    HOUR_MS,
    Candle,
    Spec,
    div,
    e9,
    from_e9,
    funding_rate_e9,
    load_candles,
    load_specs,
    mul,
    notional,
)

RESTING = ("OPEN", "PARTIALLY_FILLED_OPEN")
LIVE = ("PENDING", "STANDBY", *RESTING)
STANDBY_TYPES = ("STOP_MARKET", "STOP_LIMIT", "TAKE_PROFIT_MARKET", "TAKE_PROFIT_LIMIT")
MARKET_TYPES = ("MARKET", "STOP_MARKET", "TAKE_PROFIT_MARKET")
ORDER_TYPES = ("MARKET", "LIMIT", *STANDBY_TYPES)
TAPE_LENGTH = 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def sign(value: int) -> int:
    return (value > 0) - (value < 0)


@dataclass
class Order:
    hash: str
    seq: int
    symbol: str
    account: str
    signer: str
    side: str  # LONG | SHORT
    type: str
    price: int
    quantity: int
    leverage: int
    isolated: bool
    salt: str
    expires: int
    signed_at: int
    reduce_only: bool
    post_only: bool
    tif: str
    trigger: int | None
    stp: str
    client_order_id: str | None
    created: int
    updated: int
    status: str = "PENDING"  # internal until processed; never rendered
    filled: int = 0
    fill_value: int = 0
    cancel_reason: str | None = None
    rejection: str | None = None  # a cancellation decided at acceptance, sent when processed

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def direction(self) -> int:
        return 1 if self.side == "LONG" else -1

    @property
    def is_market(self) -> bool:
        return self.type in MARKET_TYPES

    def as_dict(self) -> dict[str, Any]:
        """The order as the fake's Python API shows it (plain floats)."""
        return {
            "orderHash": self.hash,
            "clientOrderId": self.client_order_id,
            "symbol": self.symbol,
            "accountAddress": self.account,
            "side": self.side,
            "type": self.type,
            "price": from_e9(self.price),
            "quantity": from_e9(self.quantity),
            "filled": from_e9(self.filled),
            "averagePrice": self.fill_value / self.filled if self.filled else 0.0,
            "status": self.status,
            "reduceOnly": self.reduce_only,
            "postOnly": self.post_only,
            "timeInForce": self.tif,
            "triggerPrice": from_e9(self.trigger) if self.trigger is not None else None,
            "leverage": from_e9(self.leverage),
            "isIsolated": self.isolated,
            "expiresAtMillis": self.expires,
            "cancelReason": self.cancel_reason,
        }


@dataclass
class Position:
    symbol: str
    size: int  # signed: > 0 long
    entry: int
    margin: int
    isolated: bool
    leverage: int
    updated: int
    funding_all_time: int = 0
    funding_since_change: int = 0
    funding_since_opened: int = 0

    @property
    def side(self) -> str:
        """LONG or SHORT (kept when the size reaches 0: a position never changes side, it closes)."""
        return self.opened_side

    def __post_init__(self) -> None:
        self.opened_side = "LONG" if self.size > 0 else "SHORT"


@dataclass
class Account:
    address: str
    balance: int
    leverage: dict[str, int]
    positions: dict[str, Position] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    funding: list[dict[str, Any]] = field(default_factory=list)
    updated: int = field(default_factory=now_ms)


@dataclass(frozen=True)
class AccountEvent:
    account: str
    event: str
    reason: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class MarketTick:
    """The market of ``symbol`` moved: its open candle went from index ``old`` to ``new`` (or changed)."""

    symbol: str
    old: int
    new: int


@dataclass(frozen=True)
class MarketTrade:
    symbol: str
    trade: dict[str, Any]


Event = AccountEvent | MarketTick | MarketTrade


class CommandFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Engine:
    def __init__(
        self, symbols: tuple[str, ...], cursor: int, starting_balance: float, shift_to_now: bool
    ) -> None:
        specs = load_specs()
        unknown = [s for s in symbols if s not in specs]
        if unknown:
            raise ValueError(f"no market spec for {unknown}")
        self.specs: dict[str, Spec] = {s: specs[s] for s in symbols}
        self.candles: dict[str, tuple[Candle, ...]] = {s: load_candles(s) for s in symbols}
        length = min(len(c) for c in self.candles.values())
        if not 0 <= cursor < length:
            raise ValueError(f"cursor {cursor} outside the {length} candles")
        self.cursor = cursor
        self.last_index = length - 1
        first = self.candles[symbols[0]][cursor].start
        self.time_offset = (now_ms() // 60_000 * 60_000 - first) if shift_to_now else 0
        self.overlay: dict[str, Candle] = {}
        self.past_overlay: dict[tuple[str, int], Candle] = {}
        self.previous_price: dict[str, int] = {s: self.price(s) for s in symbols}
        self.starting_balance = e9(starting_balance)
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.live: dict[str, Order] = {}
        self.liquidity: dict[str, float] = {}
        self.tape: dict[str, deque[dict[str, Any]]] = {s: deque(maxlen=TAPE_LENGTH) for s in symbols}
        self.outbox: list[Event] = []
        self._seq = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._transaction_ids = itertools.count(1)
        self.book_updates = 0
        for symbol in symbols:
            self._tape_trade(symbol, self.candles[symbol][cursor])

    # --- market ---------------------------------------------------------------------------------------
    def open_candle(self, symbol: str) -> Candle:
        return self.overlay.get(symbol) or self.candles[symbol][self.cursor]

    def minute(self, symbol: str, index: int) -> Candle:
        """The 1-minute candle at ``index`` (file time), with the price overrides it saw."""
        if index == self.cursor:
            return self.open_candle(symbol)
        return self.past_overlay.get((symbol, index)) or self.candles[symbol][index]

    def price(self, symbol: str) -> int:
        return self.open_candle(symbol).close

    def candle_time(self, candle: Candle) -> int:
        return candle.start + self.time_offset

    def market_time(self) -> int:
        """Open time of the open candle (candle clock, shifted when asked)."""
        return self.candle_time(self.candles[next(iter(self.specs))][self.cursor])

    def spec(self, symbol: str) -> Spec:
        return self.specs[symbol]

    def advance(self, minutes: int) -> None:
        for _ in range(minutes):
            if self.cursor >= self.last_index:
                return
            old = self.cursor
            for symbol in self.specs:
                self.previous_price[symbol] = self.price(symbol)
            for symbol, candle in self.overlay.items():
                self.past_overlay[(symbol, old)] = candle
            self.overlay.clear()
            self.cursor += 1
            for symbol in self.specs:
                self.outbox.append(MarketTick(symbol, old, self.cursor))
                self._tape_trade(symbol, self.candles[symbol][self.cursor])
                self.on_price(symbol)

    def set_price(self, symbol: str, price: float) -> None:
        spec = self.spec(symbol)
        value = spec.round_to_tick(e9(price))
        self.previous_price[symbol] = self.price(symbol)
        self.overlay[symbol] = self.open_candle(symbol).with_price(value)
        self.outbox.append(MarketTick(symbol, self.cursor, self.cursor))
        self._tape_trade(symbol, self.overlay[symbol], spec.min_quantity)
        self.on_price(symbol)

    def _tape_trade(self, symbol: str, candle: Candle, quantity: int | None = None) -> None:
        """The market's own trade at a new price (what the candles say others traded)."""
        spec = self.spec(symbol)
        size = quantity if quantity is not None else max(spec.min_quantity, candle.volume // 100)
        size = size // spec.step * spec.step
        side = "LONG" if candle.close >= self.previous_price.get(symbol, candle.close) else "SHORT"
        trade = render.public_trade(f"m{next(self._trade_ids)}", symbol, side, candle.close, size, now_ms())
        self.tape[symbol].appendleft(trade)
        self.outbox.append(MarketTrade(symbol, trade))

    def on_price(self, symbol: str) -> None:
        """Everything a new price sets off: expiries, resting fills, triggers, liquidations."""
        self.book_updates += 1
        self.expire_due(now_ms())
        price = self.price(symbol)
        for order in self._live_on(symbol, RESTING):
            if order.status in RESTING and self._crosses(order, price):
                self._fill_resting(order)
        for order in self._live_on(symbol, ("STANDBY",)):
            if order.status == "STANDBY" and self._triggered(order, price):
                self._trigger(order)
        self._liquidate(symbol)

    def _live_on(self, symbol: str, statuses: tuple[str, ...]) -> list[Order]:
        return sorted(
            (o for o in self.live.values() if o.symbol == symbol and o.status in statuses),
            key=lambda o: o.seq,
        )

    @staticmethod
    def _crosses(order: Order, price: int) -> bool:
        """Would a limit at the order's price trade against ``price``?"""
        return price <= order.price if order.side == "LONG" else price >= order.price

    @staticmethod
    def _triggered(order: Order, price: int) -> bool:
        assert order.trigger is not None
        stop = order.type.startswith("STOP")
        if order.side == "SHORT":
            return price <= order.trigger if stop else price >= order.trigger
        return price >= order.trigger if stop else price <= order.trigger

    # --- accounts -------------------------------------------------------------------------------------
    def ensure_account(self, address: str) -> Account:
        account = self.accounts.get(address)
        if account is None:
            leverage = {s: spec.default_leverage for s, spec in self.specs.items()}
            account = Account(address, self.starting_balance, leverage)
            self.accounts[address] = account
        return account

    def fund(self, address: str, amount: float) -> None:
        account = self.ensure_account(address)
        value = e9(amount)
        account.balance += value
        kind = "DEPOSIT" if value >= 0 else "WITHDRAW"
        reason = "Deposit" if value >= 0 else "Withdraw"
        self._transaction(account, kind, value, reason)
        self._account_update(account, reason)

    def available(self, account: Account) -> int:
        """Margin free for new positions and orders."""
        used = sum(p.margin for p in account.positions.values())
        return account.balance - used - self.order_margin(account)

    def order_margin(self, account: Account) -> int:
        total = 0
        for order in self.live.values():
            if order.account == account.address and order.status in RESTING and not order.reduce_only:
                total += div(
                    notional(order.price, self._opening_part(account, order)), account.leverage[order.symbol]
                )
        return total

    def _opening_part(self, account: Account, order: Order) -> int:
        """How much of the order's remaining quantity would open or increase a position."""
        position = account.positions.get(order.symbol)
        if position is None or sign(position.size) == order.direction:
            return order.remaining
        return max(0, order.remaining - abs(position.size))

    def liquidation_price(self, position: Position) -> int:
        if position.size == 0:
            return 0
        mmr = self.spec(position.symbol).mmr
        per_unit = position.margin * E9 // abs(position.size)
        if position.size > 0:
            return max(0, (position.entry - per_unit) * E9 // (E9 - mmr))
        return (position.entry + per_unit) * E9 // (E9 + mmr)

    def unrealized_pnl(self, position: Position) -> int:
        return (self.price(position.symbol) - position.entry) * position.size // E9

    # --- orders ---------------------------------------------------------------------------------------
    def new_seq(self) -> int:
        return next(self._seq)

    def accept(self, order: Order) -> None:
        """Record an accepted order; it is matched by ``process`` (after the answer or a delay)."""
        self.ensure_account(order.account)
        self.orders[order.hash] = order
        self.live[order.hash] = order

    def process(self, order_hash: str) -> None:
        order = self.orders[order_hash]
        if order.status != "PENDING":
            return  # cancelled before it was processed
        if order.rejection is not None:
            self._cancel(order, order.rejection)
        elif order.expires <= now_ms():
            self._cancel(order, "ORDER_EXPIRED", expired=True)
        elif order.type in STANDBY_TYPES:
            self._set_status(order, "STANDBY")
            self._order_update(order, "OrderCreated")
            if self._triggered(order, self.price(order.symbol)):
                self._trigger(order)
        else:
            self._activate(order)

    def _trigger(self, order: Order) -> None:
        order.status = "PENDING"
        self._activate(order)

    def _activate(self, order: Order) -> None:
        """A new active order (placed, or a triggered standby one): checks, then it trades and/or rests."""
        account = self.accounts[order.account]
        price = self.price(order.symbol)
        position = account.positions.get(order.symbol)
        reducing = position is not None and sign(position.size) == -order.direction
        marketable = order.is_market or self._crosses(order, price)
        if order.reduce_only and not reducing:
            return self._cancel(order, "REDUCE_ONLY_WOULD_OPEN")
        if order.post_only and marketable:
            return self._cancel(order, "POST_ONLY_WOULD_TRADE")
        if not order.reduce_only and not self._margin_ok(
            account, order, price if marketable else order.price
        ):
            return self._cancel(order, "INSUFFICIENT_MARGIN")
        self._set_status(order, "OPEN")
        self._order_update(order, "OrderCreated")
        short_reason = "INSUFFICIENT_LIQUIDITY"
        if marketable:
            quantity, short_reason = self._takeable(account, order)
            if order.tif == "FOK" and quantity < order.remaining:
                return self._cancel(order, short_reason)
            if quantity > 0:
                self._fill(order, quantity, price, maker=False)
        if order.status in RESTING and (order.is_market or order.tif in ("IOC", "FOK")):
            self._cancel(order, short_reason)
        return None

    def _margin_ok(self, account: Account, order: Order, price: int) -> bool:
        opening = self._opening_part(account, order)
        need = div(notional(price, opening), account.leverage[order.symbol])
        need += mul(notional(price, order.remaining), self.spec(order.symbol).taker_fee)
        return need <= self.available(account)

    def _takeable(self, account: Account, order: Order) -> tuple[int, str]:
        """What the order can trade now, and why not more (the cancellation reason of the rest)."""
        quantity, reason = order.remaining, "INSUFFICIENT_LIQUIDITY"
        limit = self.liquidity.get(order.symbol)
        if limit is not None:
            step = self.spec(order.symbol).step
            quantity = min(quantity, max(0, e9(limit)) // step * step)
        if order.reduce_only:
            position = account.positions.get(order.symbol)
            held = abs(position.size) if position and sign(position.size) == -order.direction else 0
            if held < quantity:
                quantity, reason = held, "ORDER_NOT_REDUCING_POSITION"
        return quantity, reason

    def _fill_resting(self, order: Order) -> None:
        account = self.accounts[order.account]
        quantity, reason = self._takeable(account, order)
        if quantity > 0:
            self._fill(order, quantity, order.price, maker=True)
        if order.status in RESTING and reason == "ORDER_NOT_REDUCING_POSITION":
            self._cancel(order, reason)

    def _fill(self, order: Order, quantity: int, price: int, maker: bool) -> None:
        account = self.accounts[order.account]
        spec = self.spec(order.symbol)
        value = notional(price, quantity)
        fee = mul(value, spec.maker_fee if maker else spec.taker_fee)
        realized, closed = self._apply_fill(account, order, quantity, price)
        held = account.positions.get(order.symbol) or closed
        position_side = held.side if held is not None else order.side
        account.balance += realized - fee
        order.filled += quantity
        order.fill_value += value
        self._set_status(order, "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED_OPEN")
        trade_id = str(next(self._trade_ids))
        trade = render.account_trade(
            self, order, trade_id, price, quantity, fee, realized, maker, position_side
        )
        account.trades.append(trade)
        public = render.public_trade(
            trade_id, order.symbol, order.side, price, quantity, trade["executedAtMillis"]
        )
        self.tape[order.symbol].appendleft(public)
        self.outbox.append(MarketTrade(order.symbol, public))
        self._emit(account, "AccountTradeUpdate", "OrderMatched", {"trade": trade})
        self._emit(account, "AccountAggregatedTradeUpdate", "OrderMatched", {"trade": trade})
        self._order_update(order, "OrderMatched")
        self._position_update(account, order.symbol, "OrderMatched", closed)
        self._transaction(account, "TRADING_FEE", -fee, "OrderMatched", order.symbol, trade_id)
        if closed is not None or realized:
            self._transaction(account, "REALIZED_PNL", realized, "OrderMatched", order.symbol, trade_id)
        self._account_update(account, "OrderMatched")

    def _apply_fill(
        self, account: Account, order: Order, quantity: int, price: int
    ) -> tuple[int, Position | None]:
        """Change the position by the fill; the realised PnL, and the position if the fill closed it."""
        delta = order.direction * quantity
        position = account.positions.get(order.symbol)
        realized, closed = 0, None
        stamp = now_ms()
        if position is not None and sign(position.size) != sign(delta):
            closing = min(quantity, abs(position.size))
            realized = (price - position.entry) * closing * sign(position.size) // E9
            position.margin -= position.margin * closing // abs(position.size)
            position.size += sign(delta) * closing
            position.funding_since_change = 0
            position.updated = stamp
            delta += -sign(delta) * closing
            if position.size == 0:
                closed = account.positions.pop(order.symbol)
                position = None
        if delta:
            leverage = account.leverage[order.symbol]
            margin = div(notional(price, abs(delta)), leverage)
            if position is None:
                account.positions[order.symbol] = Position(
                    order.symbol, delta, price, margin, order.isolated, leverage, stamp
                )
                closed = None
            else:
                size = abs(position.size) + abs(delta)
                position.entry = (position.entry * abs(position.size) + price * abs(delta)) // size
                position.size += delta
                position.margin += margin
                position.funding_since_change = 0
                position.updated = stamp
        return realized, closed

    def cancel(self, account: str, symbol: str, hashes: list[str] | None, standby: bool) -> list[str]:
        """Cancel the account's orders on ``symbol`` (all when ``hashes`` is None); the hashes cancelled."""
        mine = [o for o in self._live_on(symbol, LIVE) if o.account == account and self._in_book(o, standby)]
        if hashes is None:
            reason = "USER_CANCELLED_ALL_STANDBY_ON_MARKET" if standby else "USER_CANCELLED_ALL_ON_MARKET"
            for order in mine:
                self._cancel(order, reason, event_reason="OrdersForMarketCancelled")
            if not mine:
                self._cancel_failure(account, symbol, "", "NO_OPEN_ORDERS_ON_MARKET", reason)
            return [o.hash for o in mine]
        by_hash = {o.hash: o for o in mine}
        done = []
        for order_hash in hashes:
            found = by_hash.get(order_hash)
            if found is None:
                self._cancel_failure(account, symbol, order_hash, "ORDER_NOT_FOUND", "USER_CANCELLED")
            else:
                self._cancel(found, "USER_CANCELLED")
                done.append(order_hash)
        return done

    @staticmethod
    def _in_book(order: Order, standby: bool) -> bool:
        """Is the live order in the standby book (untriggered stops) or, ``standby`` False, the order book?"""
        if order.status == "PENDING":
            return (order.type in STANDBY_TYPES) == standby
        return (order.status == "STANDBY") == standby

    def _cancel(
        self, order: Order, reason: str, event_reason: str = "OrderCancelled", expired: bool = False
    ) -> None:
        if expired:
            status = "PARTIALLY_FILLED_EXPIRED" if order.filled else "EXPIRED"
        else:
            status = "PARTIALLY_FILLED_CANCELED" if order.filled else "CANCELLED"
        order.cancel_reason = reason
        self._set_status(order, status)
        payload = render.cancellation(
            order.hash,
            order.client_order_id,
            order.symbol,
            order.account,
            order.created,
            reason,
            order.remaining,
        )
        self._emit(self.accounts[order.account], "AccountOrderUpdate", event_reason, payload)

    def _cancel_failure(self, account: str, symbol: str, order_hash: str, failure: str, reason: str) -> None:
        payload = render.cancellation(order_hash, None, symbol, account, now_ms(), reason, 0, failure)
        self._emit(self.accounts[account], "AccountOrderUpdate", "OrderCancelled", payload)

    def _set_status(self, order: Order, status: str) -> None:
        order.status = status
        order.updated = now_ms()
        if status in LIVE:
            self.live[order.hash] = order
        else:
            self.live.pop(order.hash, None)

    def expire_due(self, now: int) -> None:
        for order in [o for o in self.live.values() if o.status != "PENDING" and o.expires <= now]:
            self._cancel(order, "ORDER_EXPIRED", expired=True)

    # --- leverage, margin, funding, liquidation --------------------------------------------------------
    def set_leverage(self, address: str, symbol: str, leverage: int) -> None:
        account = self.accounts[address]
        spec = self.spec(symbol)
        try:
            if leverage < E9 or leverage > spec.max_leverage:
                raise CommandFailed(
                    "INVALID_LEVERAGE",
                    f"leverage {from_e9(leverage)} outside 1 to {from_e9(spec.max_leverage)}",
                )
            position = account.positions.get(symbol)
            new_margin = div(notional(position.entry, abs(position.size)), leverage) if position else 0
            if position is not None and new_margin - position.margin > self.available(account):
                raise CommandFailed("INSUFFICIENT_BALANCE", "not enough margin for that leverage")
        except CommandFailed as failure:
            return self._command_failure(account, "POSITION_LEVERAGE_UPDATE", "LeverageUpdated", failure)
        for order in self._live_on(symbol, LIVE):
            if order.account == address and self._in_book(order, standby=False):
                self._cancel(order, "LEVERAGE_UPDATE", event_reason="LeverageUpdated")
        account.leverage[symbol] = leverage
        if position is not None:
            position.margin, position.leverage, position.updated = new_margin, leverage, now_ms()
            self._position_update(account, symbol, "LeverageUpdated")
        self._account_update(account, "LeverageUpdated")
        return None

    def adjust_margin(self, address: str, symbol: str, add: bool, amount: int) -> None:
        account = self.accounts[address]
        position = account.positions.get(symbol)
        try:
            if position is None:
                raise CommandFailed("NO_POSITION", f"no position on {symbol}")
            if add and amount > self.available(account):
                raise CommandFailed("INSUFFICIENT_BALANCE", "not enough free margin to add")
            initial = mul(notional(self.price(symbol), abs(position.size)), self.spec(symbol).imr)
            if not add and position.margin - amount < initial:
                raise CommandFailed(
                    "INSUFFICIENT_BALANCE", "the position would fall below its initial margin"
                )
        except CommandFailed as failure:
            return self._command_failure(
                account, "POSITION_ISOLATED_MARGIN_UPDATE", "IsolatedMarginUpdated", failure
            )
        assert position is not None
        position.margin += amount if add else -amount
        position.updated = now_ms()
        self._position_update(account, symbol, "IsolatedMarginUpdated")
        self._account_update(account, "IsolatedMarginUpdated")
        return None

    def _command_failure(self, account: Account, command: str, reason: str, failure: CommandFailed) -> None:
        payload = {
            "reason": failure.code,
            "reasonCode": failure.code,
            "failedCommandType": command,
            "failedCommandTypeCode": command,
            "failedAtMillis": now_ms(),
        }
        self._emit(account, "AccountCommandFailureUpdate", reason, payload)

    def pay_funding(self, symbol: str, rate: float) -> None:
        """One funding payment on every open position of ``symbol`` at the mark (longs pay a positive
        rate)."""
        rate_e9 = e9(rate)
        stamp = now_ms()
        for account in self.accounts.values():
            position = account.positions.get(symbol)
            if position is None:
                continue
            change = -sign(position.size) * mul(notional(self.price(symbol), abs(position.size)), rate_e9)
            account.balance += change
            position.funding_all_time += change
            position.funding_since_change += change
            position.funding_since_opened += change
            account.funding.append(
                {
                    "paymentAmountE9": str(change),
                    "positionSide": position.side,
                    "rateE9": str(rate_e9),
                    "symbol": symbol,
                    "executedAtMillis": stamp,
                    "computedAtMillis": stamp,
                }
            )
            self._transaction(account, "FUNDING_FEE", change, "FundingRatePayment", symbol)
            self._position_update(account, symbol, "FundingRatePayment")
            self._account_update(account, "FundingRatePayment")

    def _liquidate(self, symbol: str) -> None:
        price = self.price(symbol)
        for account in self.accounts.values():
            position = account.positions.get(symbol)
            if position is None:
                continue
            liquidation = self.liquidation_price(position)
            hit = price <= liquidation if position.size > 0 else price >= liquidation
            if hit:
                self._liquidate_position(account, position, liquidation)

    def _liquidate_position(self, account: Account, position: Position, price: int) -> None:
        """The position is taken over at its liquidation price: its whole isolated margin is lost."""
        loss = -position.margin
        del account.positions[position.symbol]
        account.balance += loss
        trade_id = str(next(self._trade_ids))
        side = "SHORT" if position.size > 0 else "LONG"
        trade = render.liquidation_trade(self, position, trade_id, side, price, loss)
        account.trades.append(trade)
        self._emit(account, "AccountTradeUpdate", "OrderMatched", {"trade": trade})
        self._position_update(account, position.symbol, "OrderMatched", position)
        self._transaction(account, "REALIZED_PNL", loss, "OrderMatched", position.symbol, trade_id)
        self._account_update(account, "OrderMatched")

    # --- history --------------------------------------------------------------------------------------
    def funding_history(self, symbol: str) -> list[dict[str, Any]]:
        """The market's hourly funding rates, newest first, up to the open candle."""
        first = self.candle_time(self.candles[symbol][0])
        start = -(-first // HOUR_MS) * HOUR_MS
        end = self.market_time() // HOUR_MS * HOUR_MS
        return [
            {
                "symbol": symbol,
                "fundingTimeAtMillis": hour,
                "fundingRateE9": str(funding_rate_e9(symbol, hour)),
            }
            for hour in range(end, start - 1, -HOUR_MS)
        ]

    # --- events ---------------------------------------------------------------------------------------
    def _emit(self, account: Account, event: str, reason: str, payload: dict[str, Any]) -> None:
        account.updated = now_ms()
        self.outbox.append(AccountEvent(account.address, event, reason, payload))

    def _order_update(self, order: Order, reason: str) -> None:
        self._emit(self.accounts[order.account], "AccountOrderUpdate", reason, render.active_order(order))

    def _position_update(
        self, account: Account, symbol: str, reason: str, closed: Position | None = None
    ) -> None:
        position = account.positions.get(symbol)
        if position is not None:
            self._emit(account, "AccountPositionUpdate", reason, render.position_update(self, position))
        elif closed is not None:
            self._emit(account, "AccountPositionUpdate", reason, render.closed_position_update(self, closed))

    def _account_update(self, account: Account, reason: str) -> None:
        self._emit(account, "AccountUpdate", reason, render.account_update(self, account))

    def _transaction(
        self, account: Account, kind: str, amount: int, reason: str, symbol: str = "", trade_id: str = ""
    ) -> None:
        record = render.transaction(
            str(next(self._transaction_ids)), kind, amount, symbol, trade_id, now_ms()
        )
        account.transactions.append(record)
        self._emit(account, "AccountTransactionUpdate", reason, render.transaction_update(record))

    def drain(self) -> list[Event]:
        events, self.outbox = self.outbox, []
        return events

"""``PaperExchange``: a simulated Bluefin perpetuals exchange whose books live in the database.

What it simulates:
- market, limit, stop-market, stop-limit and take-profit orders; reduce-only and post-only; time in force
  GTT, IOC and FOK;
- fills: a market (or marketable) order walks the order book when one is known (``on_book``), else pays
  ``slippage_bps`` on the mark; resting limit orders fill at their price as maker when a candle trades
  through them; stops trigger on the candle's high/low (the mark price's, when a mark series is given:
  ``set_mark_series``) and fill at the trigger as taker, or at the candle's open when it opened beyond the
  trigger (a gap: the triggered market order meets the first price there is, worse for a stop, better for
  a take-profit). A resting limit order (a plain limit, or a stop-limit / take-profit-limit once triggered)
  fills at its own price even across a gap: a resting order is matched at its price, the price improvement
  of a gap goes to the incoming order that meets it, not to the order in the book;
- isolated margin per position at the market's leverage (``set_leverage``), initial margin checked
  against free collateral, liquidation when the candle crosses the liquidation price (the position is
  closed there and what is left of its margin goes to the insurance fund);
- maker/taker fees on the notional; funding every ``funding_interval_hours`` of the market clock at the
  known rate (``set_funding_rate``), or at each time of a funding series (``set_funding_series``), paid on
  the mark (the mark series' close when given, else the last price);
- every cash movement in ``paper_ledger`` (fee, pnl, funding, liquidation), so no money appears or
  disappears unaccounted.
The books (``shared.exchange.paper_books``) are the database's for paper trading (they survive a restart)
and memory's for a backtest; the logic here is the same over both.
"""

from __future__ import annotations

import itertools
import math
import threading
import time as wall_clock
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from shared.accounting import apply_fill
from shared.db import Database, PaperFillRow, PaperOrderRow, PaperPositionRow
from shared.errors import Rejected, Temporary
from shared.exchange.base import Account, Exchange, ExchangePosition, FundingPayment, OrderRef
from shared.exchange.margin import crossed_liquidation, initial_margin, liquidation_price
from shared.exchange.markets import MarketSpec, MarketSpecs, generic_spec
from shared.exchange.paper_books import RESTING, Books, DatabaseBooks, MemoryBooks, PaperBooks
from shared.exchange.simulated import SimulatedVenue
from shared.marketdata.funding import FundingRate
from shared.marketdata.orderbook import OrderBook
from shared.marketdata.series import FundingSeries, MarkSeries
from shared.models import (
    Fill,
    OrderRequest,
    OrderResult,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)

EPS = 1e-12
MARKS_KEPT = 2_000  # live mark-price candles kept per market


@dataclass(frozen=True)
class PaperConfig:
    """The simulator's settings. Fees and the maintenance margin ratio apply to every market when given;
    None: each market's own, from its spec (``markets``: Bluefin's, as ``shared.exchange.markets`` loads
    them; None: a generic spec, 0.001 steps)."""

    starting_balance: float = 10_000.0
    taker_fee: float | None = 0.0005
    maker_fee: float | None = 0.0002
    slippage_bps: float = 2.0  # paid by market orders when no order book is known
    maintenance_ratio: float | None = 0.03
    default_leverage: float = 3.0
    max_leverage: float = 20.0
    funding_interval_hours: float = 1.0
    markets: MarketSpecs | None = None

    def spec(self, symbol: str) -> MarketSpec:
        """The market's spec with this configuration's overrides (MMR, the leverage cap) applied."""
        spec = self.markets.get(symbol) if self.markets is not None else generic_spec(symbol)
        return replace(
            spec,
            maintenance_margin_ratio=(
                self.maintenance_ratio
                if self.maintenance_ratio is not None
                else spec.maintenance_margin_ratio
            ),
            initial_margin_ratio=max(spec.initial_margin_ratio, 1 / self.max_leverage),
            maker_fee=self.maker_fee if self.maker_fee is not None else spec.maker_fee,
            taker_fee=self.taker_fee if self.taker_fee is not None else spec.taker_fee,
        )


class PaperExchange(Exchange):
    name = "paper"

    def __init__(self, db: Database | None, config: PaperConfig | None = None) -> None:
        """Books in ``db`` (paper trading), or in memory when ``db`` is None (a backtest)."""
        self.config = config or PaperConfig()
        self._specs: dict[str, MarketSpec] = {}
        balance = self.config.starting_balance
        self._store: PaperBooks = MemoryBooks(balance) if db is None else DatabaseBooks(db, balance)
        self._marks: dict[str, float] = {}
        self._books: dict[str, OrderBook] = {}
        self._funding: dict[str, FundingRate] = {}
        self._series: dict[str, FundingSeries] = {}  # funding applied at the series' own times
        self._series_next: dict[str, int] = {}  # per symbol: the index of its next settlement
        self._mark_series: dict[str, MarkSeries] = {}
        self._clock = datetime.now(UTC)
        self._next_funding: datetime | None = None
        self._lock = threading.RLock()
        # In-memory mirrors of the books, rebuilt after every write: most candles touch nothing, and then
        # a price update needs no database round trip (backtests replay a year of minutes).
        self.revision: int = 0  # bumped by every change of orders, fills, positions or balance
        self._bands: dict[str, tuple[float, float]] = {}  # per symbol: see _touches
        self._positions: list[ExchangePosition] | None = None
        self._account: tuple[float, float, float] | None = None
        self._liquidations: list[OrderResult] = []
        self._funding_paid: list[FundingPayment] = []  # settled, not drained by the owner's books yet
        self._changed_orders: set[str] = set()  # client ids whose state changed since the last drain
        # Exchange ids in creation order (microseconds at start, then one up per order; hex of a fixed
        # width sorts as numbers): resting orders placed at the same market time are worked in the order
        # they were placed, run after run, not in the order of random ids.
        self._ids = itertools.count(wall_clock.time_ns() // 1000)
        # books kept from an earlier run (paper trading): prices up to their latest market time are already
        # accounted for (a replay's warm-up history); they move the mark, never an order, fill or funding
        self._booked_until = self.booked_until() if db is not None else None

    def expected_slippage_bps(self, symbol: str) -> float:
        return self.config.slippage_bps  # market orders pay it when no order book is known, stops always

    def market_spec(self, symbol: str) -> MarketSpec:
        spec = self._specs.get(symbol)
        if spec is None:
            spec = self._specs[symbol] = self.config.spec(symbol)
        return spec

    # --- market data pushed in by the engine -------------------------------------------------------------
    def on_book(self, book: OrderBook) -> None:
        self._books[book.symbol] = book

    def set_funding_rate(self, rate: FundingRate) -> None:
        self._funding[rate.symbol] = rate

    def expected_funding_rate(self, symbol: str) -> float | None:
        """The rate the next settlement of ``symbol`` is expected at: its funding series' latest rate at the
        clock, else the rate given (its predicted next rate when the feed had one); None if none is known."""
        series = self._series.get(symbol)
        if series is not None:
            return series.rate_at(int((self._clock - _EPOCH).total_seconds()))
        known = self._funding.get(symbol)
        if known is None:
            return None
        return known.predicted if known.predicted is not None else known.rate

    def set_funding_series(self, series: FundingSeries) -> None:
        """Settle this market's funding at the series' own times and rates (instead of hourly at the last
        known rate); settlements before the current market clock are not replayed."""
        with self._lock:
            self._series[series.symbol] = series
            self._series_next[series.symbol] = series.next_index(int((self._clock - _EPOCH).total_seconds()))
            self._bands.clear()

    def set_mark_series(self, series: MarkSeries) -> None:
        """Mark-price candles of a market: stops trigger, positions liquidate and funding is paid on them
        (limit orders still fill on the last price)."""
        with self._lock:
            self._mark_series[series.symbol] = series

    def add_mark_candle(
        self, symbol: str, close_time: datetime, ohlc: tuple[float, float, float, float]
    ) -> None:
        """One more mark-price candle (live: from the exchange's feed), closing at ``close_time``; the last
        MARKS_KEPT are kept. An older or repeated one is ignored."""
        stamp = int((close_time - _EPOCH).total_seconds())
        with self._lock:
            series = self._mark_series.get(symbol)
            if series is not None and len(series.close_stamps) and stamp <= series.close_stamps[-1]:
                return
            stamps = np.array([stamp], dtype=np.int64)
            rows = np.array([ohlc], dtype=float)
            if series is not None:
                stamps = np.concatenate([series.close_stamps[-MARKS_KEPT + 1 :], stamps])
                rows = np.concatenate([series.ohlc[-MARKS_KEPT + 1 :], rows])
            self._mark_series[symbol] = MarkSeries(symbol, stamps, rows)

    def price_basis(self, symbol: str) -> str:
        """What triggers stops, liquidates and prices funding for ``symbol``: ``mark`` or ``last``."""
        return "mark" if symbol in self._mark_series else "last"

    def mark_extremes(self, symbol: str, close_stamps: Any) -> Any:
        """(high, low) of the mark candle closing at each of ``close_stamps`` (NaN where none), or None
        without a mark series (for the backtest's fast-forward)."""
        series = self._mark_series.get(symbol)
        return None if series is None else series.aligned(close_stamps)

    def on_price(
        self,
        symbol: str,
        price: float,
        time: datetime,
        high: float | None = None,
        low: float | None = None,
        open_: float | None = None,
    ) -> None:
        """A new price (a candle's close, with its high, low and open): funding, triggers, fills and
        liquidations. The open tells a gap: a stop the candle opened beyond fills at the open."""
        high = max(price, high if high is not None else price)
        low = min(price, low if low is not None else price)
        with self._lock:
            if self._booked_until is not None and time <= self._booked_until:
                self._marks[symbol] = price  # already booked by the run before: nothing may happen again
                return
            self._clock = time
            self._marks[symbol] = price
            mark = self._mark_candle(symbol, time)
            trigger_high, trigger_low = (high, low) if mark is None else (mark[1], mark[2])
            touch_high, touch_low = max(high, trigger_high), min(low, trigger_low)
            if not (self._funding_due(time) or self._touches(symbol, touch_high, touch_low)):
                return
            with self._writing() as books:
                self._settle_funding(books, time)
                candle = _Candle(open_, high, low, trigger_high, trigger_low)
                self._work_resting_orders(books, symbol, candle)
                self._check_liquidation(books, symbol, trigger_high, trigger_low)

    def _mark_candle(self, symbol: str, time: datetime) -> tuple[float, float, float, float] | None:
        series = self._mark_series.get(symbol)
        if series is None:
            return None
        return series.at_close(int((time - _EPOCH).total_seconds()))

    def _funding_mark(self, symbol: str) -> float | None:
        """The price funding is paid on now: the mark candle's close at the clock, else the last price."""
        mark = self._mark_candle(symbol, self._clock)
        return mark[3] if mark is not None else self._marks.get(symbol)

    # --- the in-memory mirrors ---------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[Books]:
        """A write transaction under the lock; the mirrors are dropped once it has committed (or failed)."""
        with self._lock:
            try:
                with self._store.transaction() as books:
                    yield books
            finally:
                self.revision += 1
                self._bands.clear()
                self._positions = None
                self._account = None

    def _funding_due(self, time: datetime) -> bool:
        """A funding settlement is due and could move money (a rate is known and a position is open)."""
        if self._next_funding is None:
            return True
        if self._series_due(time):
            return True
        if time < self._next_funding:
            return False
        if self._funding and self.exchange_positions():
            return True
        interval = timedelta(hours=self.config.funding_interval_hours)
        while time >= self._next_funding:  # nothing to settle: the clock just moves on
            self._next_funding += interval
        return False

    # --- fast-forward of quiet candles (backtests) ---------------------------------------------------------
    def quiet_band(self, symbol: str) -> tuple[float, float]:
        """(up, down): a candle whose high reaches ``up`` or whose low reaches ``down`` may trigger, fill or
        liquidate something; any other candle only moves the mark."""
        with self._lock:
            band = self._bands.get(symbol)
            if band is None:
                band = self._bands[symbol] = self._band(symbol)
            return band

    def _series_due(self, time: datetime) -> bool:
        """A settlement of a funding series is due at ``time`` for a market with a position; the series of
        flat markets just move on (nothing to pay)."""
        if not self._series:
            return False
        stamp = int((time - _EPOCH).total_seconds())
        held = {p.position.symbol for p in self.exchange_positions()}
        due = False
        for symbol, series in self._series.items():
            index = self._series_next[symbol]
            if index < len(series.times) and series.times[index] <= stamp:
                if symbol in held:
                    due = True
                else:
                    self._series_next[symbol] = series.next_index(stamp)
        return due

    def funding_event(self) -> datetime | None:
        """When the next funding settlement could move money (None: no rate known or no position)."""
        if self._next_funding is None:
            return datetime(1970, 1, 1, tzinfo=UTC)  # not initialised: the next candle must go through
        held = self.exchange_positions()
        if not held:
            return None
        moments: list[datetime] = []
        if any(symbol not in self._series for symbol in self._funding):
            moments.append(self._next_funding)
        for held_position in held:
            series = self._series.get(held_position.position.symbol)
            if series is not None:
                index = self._series_next[held_position.position.symbol]
                if index < len(series.times):
                    moments.append(_EPOCH + timedelta(seconds=int(series.times[index])))
        return min(moments) if moments else None

    def advance(self, symbol: str, price: float, time: datetime) -> None:
        """A run of quiet candles ends at ``price`` and ``time``: what ``on_price`` would have left behind
        when nothing touched a resting order (checked by the caller with ``quiet_band``/``funding_event``)."""
        with self._lock:
            self._clock = time
            self._marks[symbol] = price
            self._funding_due(time)  # rolls the funding clock forward when nothing was due

    def _touches(self, symbol: str, high: float, low: float) -> bool:
        """Could this candle trigger or fill one of the symbol's resting orders, or liquidate its position?
        Every resting order (and the liquidation price) is reduced to two levels: the lowest a candle's high
        must reach and the highest its low must reach for anything to happen."""
        up, down = self.quiet_band(symbol)
        return high >= up or low <= down

    def _band(self, symbol: str) -> tuple[float, float]:
        up, down = math.inf, -math.inf  # a high at or above ``up``, or a low at or below ``down``, acts
        with self._lock, self._store.reading() as books:
            for row in books.resting(symbol):
                buy = row.side == Side.BUY.value
                if OrderType(row.order_type).has_trigger and not row.triggered:
                    assert row.trigger_price is not None
                    rises = OrderType(row.order_type).is_take_profit != buy  # TP sell / stop buy
                    level = row.trigger_price
                else:
                    assert row.price is not None
                    rises, level = not buy, row.price
                if rises:
                    up = min(up, level)
                else:
                    down = max(down, level)
        for held in self.exchange_positions():
            liquidation = held.liquidation_price
            if held.position.symbol == symbol and liquidation is not None:
                if held.position.quantity > 0:
                    down = max(down, liquidation)
                else:
                    up = min(up, liquidation)
        return up, down

    def drain_changed_orders(self) -> set[str]:
        """Client ids of the orders that filled, triggered or finished on their own (a candle reached them,
        a liquidation cancelled them) since the last call; what place_order and cancel_order did, their
        caller already knows."""
        with self._lock:
            drained, self._changed_orders = self._changed_orders, set()
        return drained

    @property
    def liquidations_pending(self) -> bool:
        return bool(self._liquidations)

    @property
    def changes_pending(self) -> bool:
        """Did an order change on its own (``drain_changed_orders`` would name it)?"""
        return bool(self._changed_orders)

    @property
    def funding_pending(self) -> bool:
        return bool(self._funding_paid)

    def drain_funding(self) -> list[FundingPayment]:
        """Funding settled on positions since the last call (for the owner's books: each trade's funding)."""
        with self._lock:
            drained, self._funding_paid = self._funding_paid, []
        return drained

    def drain_liquidations(self) -> list[OrderResult]:
        """Liquidations since the last call, as filled reduce-only orders (for the owner's books)."""
        with self._lock:
            drained, self._liquidations = self._liquidations, []
        return drained

    def mark_price(self, symbol: str) -> float | None:
        return self._marks.get(symbol)

    def orderbook(self, symbol: str) -> OrderBook | None:
        return self._books.get(symbol)

    def funding_rate(self, symbol: str) -> FundingRate | None:
        return self._funding.get(symbol)

    # --- orders ------------------------------------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> OrderResult:
        mark = self._marks.get(request.symbol)
        if mark is None:
            raise Temporary(f"no market price for {request.symbol} yet")
        with self._writing() as books:
            if books.order(request.client_id) is not None:
                raise Rejected(f"duplicate client id {request.client_id}")
            position = self._position_row(books, request.symbol)
            # read (and held: a database session's identity map is weak) before the order is added: a read
            # after it would flush the order before its outcome is known, and write it twice
            account = books.account()
            problems = self.market_spec(request.symbol).problems(request)
            if problems:
                raise Rejected(f"{request.symbol}: " + "; ".join(problems))
            if request.reduce_only and not _reduces(position.quantity, request.side):
                raise Rejected("reduce-only order would not reduce the position")
            order = PaperOrderRow(
                exchange_id=f"paper-{next(self._ids):014x}",
                client_id=request.client_id,
                symbol=request.symbol,
                side=request.side.value,
                order_type=request.order_type.value,
                quantity=request.quantity,
                price=request.price,
                trigger_price=request.trigger_price,
                time_in_force=request.time_in_force.value,
                post_only=request.post_only,
                reduce_only=request.reduce_only,
                leverage=request.leverage,
                triggered=False,
                filled_quantity=0.0,
                average_price=None,
                fee=0.0,
                status=OrderStatus.OPEN.value,
                created_at=self._clock,
            )
            books.add_order(order)
            if request.order_type.has_trigger:
                if _triggered(order, mark, mark):
                    self._trigger(books, order, mark, mark)
            else:
                self._execute_now(books, order, mark)
            self._changed_orders.discard(order.client_id)  # the caller gets this result directly
            if order.status == OrderStatus.REJECTED.value:
                raise Rejected(order.reason or "rejected")
            del account
            return self._result(books, order)

    def _execute_now(self, books: Books, order: PaperOrderRow, mark: float) -> None:
        """Market or limit order arriving now: take what is marketable, then rest, cancel or reject."""
        side = Side(order.side)
        limit = order.price if OrderType(order.order_type).has_limit else None
        book = self._books.get(order.symbol)
        best = (book.asks[0][0] if side is Side.BUY else book.bids[0][0]) if book else mark
        marketable = limit is None or (limit >= best if side is Side.BUY else limit <= best)
        if order.post_only and marketable:
            self._finish(order, OrderStatus.REJECTED, "post-only order would take liquidity")
            return
        wanted = self._clip_reduce_only(books, order)
        if wanted <= EPS:
            self._finish(order, OrderStatus.CANCELED, "reduce-only: nothing to reduce")
            return
        available: list[tuple[float, float]] = []
        if marketable:
            available = self._taker_prices(order.symbol, side, wanted, mark, limit)
        fillable = sum(q for _, q in available)
        tif = order.time_in_force
        if tif == TimeInForce.FOK.value and fillable < wanted - EPS:
            self._finish(
                order, OrderStatus.CANCELED, f"fill-or-kill: only {fillable:g} of {wanted:g} available"
            )
            return
        for price, quantity in available:
            if not self._fill(books, order, quantity, price, "taker"):
                # nothing filled: a plain rejection; something filled: the rest is cancelled, fills stay
                self._finish(order, OrderStatus.CANCELED if order.filled_quantity else OrderStatus.REJECTED)
                return
        remaining = wanted - order.filled_quantity
        if remaining <= EPS:
            self._finish(order, OrderStatus.FILLED)
        elif limit is None or tif == TimeInForce.IOC.value:
            reason = (
                "immediate-or-cancel remainder" if tif == TimeInForce.IOC.value else "order book exhausted"
            )
            self._finish(order, OrderStatus.CANCELED, f"{reason}: {remaining:g} not filled")
        else:
            order.status = (
                OrderStatus.PARTIALLY_FILLED.value if order.filled_quantity else OrderStatus.OPEN.value
            )

    def _taker_prices(
        self, symbol: str, side: Side, quantity: float, mark: float, limit: float | None
    ) -> list[tuple[float, float]]:
        """(price, quantity) slices a taker gets now: the book walked up to the limit, or slippage."""
        book = self._books.get(symbol)
        if book is None:
            price = mark * (1 + side.sign * self.config.slippage_bps / 10_000)
            if limit is not None:
                price = min(price, limit) if side is Side.BUY else max(price, limit)
            return [(price, quantity)]
        slices, remaining = [], quantity
        for price, size in book.asks if side is Side.BUY else book.bids:
            if remaining <= EPS or (
                limit is not None and (price > limit if side is Side.BUY else price < limit)
            ):
                break
            take = min(size, remaining)
            slices.append((price, take))
            remaining -= take
        return slices

    def _fill(
        self, books: Books, order: PaperOrderRow, quantity: float, price: float, liquidity: str
    ) -> bool:
        """Apply one fill with margin, fees and PnL; False (order cancelled) when margin is insufficient."""
        side = Side(order.side)
        account = books.account()
        row = self._position_row(books, order.symbol)
        before = Position(order.symbol, row.quantity, row.entry_price)
        effect = apply_fill(before, side, quantity, price)
        spec = self.market_spec(order.symbol)
        fee = quantity * price * (spec.maker_fee if liquidity == "maker" else spec.taker_fee)
        leverage = order.leverage if abs(effect.position.quantity) > abs(before.quantity) else row.leverage
        kept = row.margin * (1 - effect.closed_quantity / abs(before.quantity)) if before.quantity else 0.0
        opened = abs(effect.position.quantity) - (abs(before.quantity) - effect.closed_quantity)
        new_margin = kept + (initial_margin(opened, price, leverage) if opened > EPS else 0.0)
        if abs(effect.position.quantity) <= EPS:
            new_margin = 0.0
        others = books.margin_used(exclude=order.symbol)
        free_after = account.balance + effect.realized_pnl - fee - others - new_margin
        if new_margin > row.margin + EPS and free_after < -EPS:
            extra = new_margin - row.margin
            order.reason = f"insufficient margin: needs {extra:.2f}, free {free_after + extra:.2f}"
            return False
        row.quantity, row.entry_price = effect.position.quantity, effect.position.entry_price
        row.margin = new_margin
        if opened > EPS:
            row.leverage = leverage
        account.balance += effect.realized_pnl - fee
        account.fees_paid += fee
        books.ledger("fee", order.symbol, -fee, self._clock, order.exchange_id)
        if effect.realized_pnl:
            books.ledger("pnl", order.symbol, effect.realized_pnl, self._clock, order.exchange_id)
        filled_before = order.filled_quantity
        order.filled_quantity = filled_before + quantity
        self._changed_orders.add(order.client_id)
        order.average_price = (
            (order.average_price or 0.0) * filled_before + price * quantity
        ) / order.filled_quantity
        order.fee += fee
        count = order.fill_count or 0
        if not count and filled_before:  # an order from before fill_count was kept: count its fills
            count = len(books.fills(order.exchange_id))
        order.fill_count = count + 1
        books.add_fill(
            PaperFillRow(
                trade_id=f"{order.exchange_id}-{order.fill_count}",
                exchange_id=order.exchange_id,
                client_id=order.client_id,
                symbol=order.symbol,
                side=order.side,
                quantity=quantity,
                price=price,
                fee=fee,
                liquidity=liquidity,
                time=self._clock,
            )
        )
        return True

    def _clip_reduce_only(self, books: Books, order: PaperOrderRow) -> float:
        wanted = order.quantity - order.filled_quantity
        if not order.reduce_only:
            return wanted
        position = self._position_row(books, order.symbol).quantity
        return min(wanted, abs(position)) if _reduces(position, Side(order.side)) else 0.0

    def _finish(self, order: PaperOrderRow, status: OrderStatus, reason: str | None = None) -> None:
        self._changed_orders.add(order.client_id)
        order.status = status.value
        if reason:
            order.reason = reason

    # --- resting orders, triggers, liquidation, funding ---------------------------------------------------
    def _work_resting_orders(self, books: Books, symbol: str, candle: _Candle) -> None:
        for order in books.resting(symbol):
            kind = OrderType(order.order_type)
            if kind.has_trigger and not order.triggered:
                if _triggered(order, candle.trigger_high, candle.trigger_low):
                    self._trigger(books, order, candle.high, candle.low, candle)
                continue
            self._fill_resting_limit(books, order, candle.high, candle.low)

    def _trigger(
        self, books: Books, order: PaperOrderRow, high: float, low: float, candle: _Candle | None = None
    ) -> None:
        order.triggered = True
        trigger = order.trigger_price
        assert trigger is not None
        if OrderType(order.order_type).has_limit:  # a stop-limit or take-profit-limit now rests at its price
            self._fill_resting_limit(books, order, high, low)
            return
        wanted = self._clip_reduce_only(books, order)
        if wanted <= EPS:
            self._finish(order, OrderStatus.CANCELED, "reduce-only: nothing to reduce")
            return
        side = Side(order.side)
        base = trigger if candle is None else _trigger_fill(order, trigger, candle)
        price = base * (1 + side.sign * self.config.slippage_bps / 10_000)
        self._finish(
            order,
            OrderStatus.FILLED if self._fill(books, order, wanted, price, "taker") else OrderStatus.CANCELED,
        )

    def _fill_resting_limit(self, books: Books, order: PaperOrderRow, high: float, low: float) -> None:
        price = order.price
        assert price is not None
        side = Side(order.side)
        touched = low <= price if side is Side.BUY else high >= price
        if not touched:
            return
        wanted = self._clip_reduce_only(books, order)
        if wanted <= EPS:
            self._finish(order, OrderStatus.CANCELED, "reduce-only: nothing to reduce")
            return
        self._finish(
            order,
            OrderStatus.FILLED if self._fill(books, order, wanted, price, "maker") else OrderStatus.CANCELED,
        )

    def _check_liquidation(self, books: Books, symbol: str, high: float, low: float) -> None:
        row = books.position(symbol)
        if row is None or abs(row.quantity) <= EPS:
            return
        liquidation = liquidation_price(
            row.entry_price, row.quantity, row.margin, self.market_spec(symbol).maintenance_margin_ratio
        )
        if not crossed_liquidation(row.quantity, liquidation, low, high):
            return
        assert liquidation is not None
        account = books.account()
        realized = (liquidation - row.entry_price) * row.quantity
        remaining = max(row.margin + realized, 0.0)  # to the insurance fund
        account.balance += realized - remaining
        books.ledger("pnl", symbol, realized, self._clock, "liquidation")
        books.ledger("liquidation", symbol, -remaining, self._clock, "liquidation")
        side = Side.SELL if row.quantity > 0 else Side.BUY
        exchange_id = f"paper-liq-{uuid.uuid4().hex[:12]}"
        books.add_order(
            PaperOrderRow(
                exchange_id=exchange_id,
                client_id=f"liquidation-{exchange_id}",
                symbol=symbol,
                side=side.value,
                order_type=OrderType.MARKET.value,
                quantity=abs(row.quantity),
                reduce_only=True,
                filled_quantity=abs(row.quantity),
                average_price=liquidation,
                fee=0.0,
                status=OrderStatus.FILLED.value,
                reason=f"liquidated at {liquidation:.2f}",
                created_at=self._clock,
            )
        )
        books.add_fill(
            PaperFillRow(
                trade_id=f"{exchange_id}-1",
                exchange_id=exchange_id,
                client_id=f"liquidation-{exchange_id}",
                symbol=symbol,
                side=side.value,
                quantity=abs(row.quantity),
                price=liquidation,
                fee=0.0,
                liquidity="taker",
                time=self._clock,
            )
        )
        self._liquidations.append(
            OrderResult(
                client_id=f"liquidation-{exchange_id}", exchange_id=exchange_id, status=OrderStatus.FILLED,
                filled_quantity=abs(row.quantity), average_price=liquidation,
                fills=(Fill(f"{exchange_id}-1", f"liquidation-{exchange_id}", symbol, side, abs(row.quantity),
                            liquidation, 0.0, self._clock, forfeited=remaining),),
                reason=f"liquidated at {liquidation:.2f}", symbol=symbol, side=side,
                quantity=abs(row.quantity), order_type=OrderType.MARKET,
            )
        )  # fmt: skip
        row.quantity, row.entry_price, row.margin = 0.0, 0.0, 0.0
        for order in books.resting(symbol):
            if order.reduce_only:
                self._finish(order, OrderStatus.CANCELED, "position liquidated")

    def _settle_funding(self, books: Books, time: datetime) -> None:
        interval = timedelta(hours=self.config.funding_interval_hours)
        if self._next_funding is None:
            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            self._next_funding = epoch + ((time - epoch) // interval + 1) * interval
            return
        while time >= self._next_funding:
            account = books.account()
            for row in books.open_positions():
                if row.symbol in self._series:
                    continue  # settled at its own times (_settle_series)
                rate = self._funding.get(row.symbol)
                mark = self._funding_mark(row.symbol)
                if rate is None or mark is None:
                    continue
                payment = -rate.rate * row.quantity * mark  # longs pay when the rate is positive
                account.balance += payment
                books.ledger("funding", row.symbol, payment, self._clock, self._next_funding.isoformat())
                key = f"paper-{row.symbol}-{self._next_funding.isoformat()}"
                side = "LONG" if row.quantity > 0 else "SHORT"
                self._funding_paid.append(
                    FundingPayment(key, row.symbol, payment, rate.rate, side, self._clock)
                )
            self._next_funding += interval
        self._settle_series(books, time)

    def _settle_series(self, books: Books, time: datetime) -> None:
        """Every settlement of a funding series at or before ``time``, at its own rate, on the mark now."""
        stamp = int((time - _EPOCH).total_seconds())
        for symbol, series in self._series.items():
            index = self._series_next[symbol]
            row = books.position(symbol)
            while index < len(series.times) and series.times[index] <= stamp:
                mark = self._funding_mark(symbol)
                if row is not None and abs(row.quantity) > EPS and mark is not None:
                    rate = float(series.rates[index])
                    payment = -rate * row.quantity * mark  # longs pay a positive rate
                    books.account().balance += payment
                    at = (_EPOCH + timedelta(seconds=int(series.times[index]))).isoformat()
                    books.ledger("funding", symbol, payment, self._clock, at)
                    self._funding_paid.append(
                        FundingPayment(f"paper-{symbol}-{at}", symbol, payment, rate,
                                       "LONG" if row.quantity > 0 else "SHORT", self._clock)
                    )  # fmt: skip
                index += 1
            self._series_next[symbol] = index

    # --- reads -------------------------------------------------------------------------------------------
    def cancel_order(self, client_id: str, ref: OrderRef | None = None) -> OrderResult:
        with self._writing() as books:
            order = books.order(client_id)
            if order is None:
                raise Rejected(f"unknown order {client_id}")
            if order.status not in RESTING:
                raise Rejected(f"order {client_id} is {order.status}, not open")
            self._finish(order, OrderStatus.CANCELED, "cancelled by request")
            self._changed_orders.discard(order.client_id)  # the caller gets this result directly
            return self._result(books, order)

    def get_order(self, client_id: str, ref: OrderRef | None = None) -> OrderResult | None:
        with self._lock, self._store.reading() as books:
            order = books.order(client_id)
            return None if order is None else self._result(books, order)

    def open_orders(self, symbol: str | None = None) -> list[OrderResult]:
        with self._lock, self._store.reading() as books:
            return [self._result(books, o) for o in books.resting(symbol)]

    def _result(self, books: Books, order: PaperOrderRow) -> OrderResult:
        # every fill adds to filled_quantity, so an unfilled order (a new stop or target, a cancelled one)
        # has none to read: a query saved on most results
        fills = books.fills(order.exchange_id) if order.filled_quantity > 0 else []
        return OrderResult(
            client_id=order.client_id,
            exchange_id=order.exchange_id,
            status=OrderStatus(order.status),
            filled_quantity=order.filled_quantity,
            average_price=order.average_price,
            fills=tuple(
                Fill(f.trade_id, f.client_id, f.symbol, Side(f.side), f.quantity, f.price, f.fee, f.time)
                for f in fills
            ),
            reason=order.reason,
            symbol=order.symbol,
            side=Side(order.side),
            quantity=order.quantity,
            order_type=OrderType(order.order_type),
        )

    def set_leverage(self, symbol: str, leverage: float) -> None:
        highest = self.market_spec(symbol).max_leverage
        if not 1 <= leverage <= highest:
            raise Rejected(f"leverage must be from 1 to {highest:g}")
        with self._writing() as books:
            row = self._position_row(books, symbol)
            if abs(row.quantity) > EPS:
                raise Rejected(
                    "change leverage with the position flat (isolated margin is posted per position)"
                )
            row.leverage = leverage

    def positions(self) -> list[Position]:
        return [p.position for p in self.exchange_positions()]

    def exchange_positions(self) -> list[ExchangePosition]:
        cached = self._positions
        if cached is not None:
            return cached
        with self._lock, self._store.reading() as books:
            rows = books.open_positions()
            cached = [
                ExchangePosition(
                    Position(r.symbol, r.quantity, r.entry_price),
                    r.leverage,
                    r.margin,
                    liquidation_price(
                        r.entry_price,
                        r.quantity,
                        r.margin,
                        self.market_spec(r.symbol).maintenance_margin_ratio,
                    ),
                )
                for r in rows
            ]
            self._positions = cached
        return cached

    def account(self) -> Account:
        cached = self._account
        if cached is None:
            with self._lock, self._store.reading() as books:
                account = books.account()
                cached = (account.balance, account.fees_paid, books.margin_used())
                self._account = cached
        balance, fees, margin = cached
        unrealized, marks = 0.0, self._marks
        for held in self.exchange_positions():
            mark = marks.get(held.position.symbol)
            if mark is not None:
                unrealized += (mark - held.position.entry_price) * held.position.quantity
        return Account(balance, balance + unrealized, unrealized, fees, margin)

    def ledger_total(self, kind: str | None = None) -> float:
        with self._lock, self._store.reading() as books:
            return books.ledger_total(kind)

    def simulated_venue(self) -> SimulatedVenue:
        return self

    def booked_until(self) -> datetime | None:
        """The latest market time of the books (paper trading's survive a restart): a replay resumes after
        it, so no order or fill is ever timed before one already booked."""
        with self._lock, self._store.reading() as books:
            return books.latest_time()

    def _position_row(self, books: Books, symbol: str) -> PaperPositionRow:
        row = books.position(symbol)
        if row is None:
            row = PaperPositionRow(
                symbol=symbol,
                quantity=0.0,
                entry_price=0.0,
                leverage=self.config.default_leverage,
                margin=0.0,
            )
            books.add_position(row)
        return row


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Candle:
    """One candle as the resting orders see it: its open (None: unknown), the last price's high and low
    (limit fills) and the high and low that trigger stops (the mark's when known, else the same)."""

    open: float | None
    high: float
    low: float
    trigger_high: float
    trigger_low: float


def _trigger_fill(order: PaperOrderRow, trigger: float, candle: _Candle) -> float:
    """Where a triggered stop-market or take-profit-market order fills (before slippage): at the trigger,
    or at the candle's open when it opened beyond it (a gap: no price between was traded), and never
    outside the candle's traded range (a trigger reached by the mark alone fills where the last price was)."""
    buy = order.side == Side.BUY.value
    rises = OrderType(order.order_type).is_take_profit != buy  # TP sell / stop buy trigger as price rises
    price = trigger
    if candle.open is not None and (candle.open >= trigger if rises else candle.open <= trigger):
        price = candle.open
    return min(max(price, candle.low), candle.high)


def _reduces(position: float, side: Side) -> bool:
    return position * side.sign < 0


def _triggered(order: PaperOrderRow, high: float, low: float) -> bool:
    trigger = order.trigger_price
    assert trigger is not None
    buy = order.side == Side.BUY.value
    if OrderType(order.order_type).is_take_profit:  # buy below, sell above
        return low <= trigger if buy else high >= trigger
    return high >= trigger if buy else low <= trigger  # stops: buy above, sell below

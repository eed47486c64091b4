"""Position management, every closed candle: protective orders kept on the exchange, stops that move,
partial take-profits, and exits that say why.

Each open position has a plan (``position_plans``): the entry's context, its initial stop and risk per unit
(R), the current stop and what kind it is, partial take-profits taken, the best price since entry, and the
support/resistance level it depended on. Every candle, for every market with a position:
- protective orders are kept in line with the plan and the position: one reduce-only STOP_MARKET for the
  whole position at the plan's stop, one reduce-only LIMIT at the take-profit, and one reduce-only LIMIT
  per partial take-profit not yet taken (PARTIAL_TAKE_PROFITS: at entry + R x multiple, that fraction of
  the initial quantity); a replacement is placed before the order it replaces is cancelled; an order within
  a day of its signed expiry (Bluefin Pro signs one into every order) is replaced the same way;
- after the first partial take-profit the stop moves to break-even (the entry price);
- trailing stop (TRAILING_STOP atr:K or pct:P): once the best price is TRAILING_ACTIVATION_R x R past the
  entry, the stop follows K ATRs (or P %) behind the best price, moving only forward and by at least a
  quarter of that distance at a time (each move replaces an order on the exchange);
- exits with a market reduce-only order, each recording why: ``level_break`` (a closed 15m candle closes
  through the support of a long / resistance of a short that the entry depended on), ``risk_view`` (on a
  closed 15m candle the rules analyst's view of the position's side turns: trend and momentum against),
  ``time_exit`` (open STAGNANT_EXIT_HOURS with less than STAGNANT_MAX_R x R gained or lost),
  ``funding`` (carrying cost above FUNDING_EXIT_DAILY of the notional per day).
A flat market has no plan and no protective order left.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta

from agent.execution.orders import OrderExecutor, PlannedOrder
from agent.journal.store import Conflict, EntryRows, Store
from agent.risk.presets import RiskPolicy
from agent.risk.sizing import floor_to_step
from shared.db import PositionPlanRow
from shared.exchange.markets import MarketSpec, generic_spec
from shared.logs import log_event
from shared.marketdata.funding import FundingRate
from shared.models import Candle, OrderStatus, OrderType, Side

logger = logging.getLogger(__name__)
PROTECTIVE = ("stop_loss", "take_profit", "partial_take_profit")
WORKING = (OrderStatus.PENDING_SUBMIT.value, OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value)
ACKNOWLEDGED = (OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value, OrderStatus.FILLED.value)
LEVEL_TIMEFRAME = "15m"
EPS = 1e-9
RENEW_BEFORE = timedelta(days=1)  # a protective order this close to its signed expiry is replaced


@dataclass
class Plan:
    symbol: str
    side: str
    entry_client_id: str
    signal_id: int | None
    decision_id: int | None
    signal_source: str
    analyst: str
    regime: str
    entry_price: float
    initial_quantity: float
    initial_stop: float | None
    risk_per_unit: float
    stop_price: float | None
    stop_kind: str
    take_profit: float | None
    partials_done: int
    trailing_active: bool
    best_price: float
    level_price: float | None
    level_kind: str
    opened_at: datetime

    @property
    def sign(self) -> int:
        return 1 if self.side == Side.BUY.value else -1

    def holds(self, quantity: float) -> bool:
        """Is this the plan of a position of that (signed) quantity: same side, not flat?"""
        return quantity * self.sign > 0

    @classmethod
    def from_row(cls, row: PositionPlanRow) -> Plan:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})

    def to_row(self) -> PositionPlanRow:
        return PositionPlanRow(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class Leg:
    client_id: str
    role: str
    price: float  # trigger (stop) or limit (targets)
    quantity: float
    exit_kind: str
    expires_at: datetime | None = None  # its signed expiry, on an exchange that has one (Bluefin Pro)
    status: str = OrderStatus.OPEN.value

    def expiring(self) -> bool:
        """Within RENEW_BEFORE of its signed expiry (wall clock): replaced before it lapses."""
        return self.expires_at is not None and self.expires_at - datetime.now(UTC) < RENEW_BEFORE


@dataclass(frozen=True)
class MarketView:
    """What the manager needs from the market at one candle."""

    now: datetime  # the market clock: the candle's close time
    candle: Candle  # the closed base candle (1m, or a candle file's coarser interval)
    closed: dict[str, Candle] = field(default_factory=dict)  # higher timeframes that closed with it
    atr: float | None = None  # of the policy's ATR timeframe
    funding: FundingRate | None = None
    funding_interval_hours: float = 1.0
    level_timeframe: str = LEVEL_TIMEFRAME  # level breaks and reviews: 15m, or the base when coarser


@dataclass
class _Book:
    revision: int = -1
    quantity: float = 0.0
    entry_price: float = 0.0
    plan: Plan | None = None
    legs: list[Leg] = field(default_factory=list)
    partials_filled: int = 0


@dataclass(frozen=True)
class EntryContext:
    """Facts about the market when a plan is made: the regime and the levels around the price."""

    regime: str = ""
    supports: tuple[float, ...] = ()
    resistances: tuple[float, ...] = ()


Reviewer = Callable[[str, Side], str | None]  # (symbol, side held) -> why to exit, or None


@dataclass(frozen=True)
class QuietLimits:
    """What would make the manager act on a coming candle (a backtest skips the candles that meet none)."""

    up: float = math.inf  # a high at or above it
    down: float = -math.inf  # a low at or below it
    at: datetime | None = None  # a candle closing at or after it (time exit)
    timeframes: frozenset[str] = frozenset()  # a candle closing one of these timeframes
    blocked: bool = False  # the next candle must go through in any case


class PositionManager:
    def __init__(
        self,
        store: Store,
        executor: OrderExecutor,
        policy: RiskPolicy,
        context: Callable[[str], EntryContext] | None = None,
        reviewer: Reviewer | None = None,
        spec: Callable[[str], MarketSpec] = generic_spec,
    ) -> None:
        self._store = store
        self._executor = executor
        self.policy = policy
        self._spec = spec  # a market's tick and step (protective orders go out on them)
        self._context = context or (lambda _symbol: EntryContext())
        self._reviewer = reviewer
        self._books: dict[str, _Book] = {}

    # --- reading our books (only when an order or fill of the market changed) ------------------------------
    def _book(self, symbol: str) -> _Book:
        book = self._books.setdefault(symbol, _Book())
        revision = self._executor.revision.get(symbol, 0)
        if book.revision == revision:
            return book
        booking = self._executor.bookings.get(symbol)
        if (
            booking is not None and booking.revision == revision == book.revision + 1
            and booking.role not in PROTECTIVE
        ):  # fmt: skip
            # the one change since the last read: an entry or close order, which moves the position only
            # (protective orders and partial counts are as read; booking drops the plan on flat or a flip)
            if booking.position is not None:
                quantity, entry_price = booking.position
                book.quantity, book.entry_price = round(quantity, 9), entry_price
            if booking.plan_dropped:
                book.plan = None
            book.revision = revision
            return book
        with self._store.transaction() as records:
            position = records.position(symbol)
            plan_row = records.plan(symbol)
            legs = records.orders(WORKING, symbol, roles=PROTECTIVE)
            book.plan = Plan.from_row(plan_row) if plan_row else None
            filled = (OrderStatus.FILLED.value,)
            book.partials_filled = (
                len(records.orders(filled, roles=("partial_take_profit",), parent=plan_row.entry_client_id))
                if plan_row
                else 0
            )
        book.quantity = round(position.quantity, 9) if position else 0.0  # on the step, without float dust
        book.entry_price = position.entry_price if position else 0.0
        book.legs = [
            Leg(o.client_id, o.role, (o.trigger_price if o.role == "stop_loss" else o.limit_price) or 0.0,
                o.quantity, o.exit_kind, o.expires_at, o.status)
            for o in legs
        ]  # fmt: skip
        book.revision = revision
        return book

    def _save(self, plan: Plan, new: bool = False) -> None:
        """Persist the plan (the best price is saved along with any other change, not on its own: after a
        restart a trailing stop may start from a slightly older best price, never a better one). ``new``:
        the books read no plan for this market, so it is inserted (updated if one is there after all)."""
        if new:
            try:
                with self._store.transaction() as records:
                    records.add_plan(plan.to_row())
                return
            except Conflict:
                log_event(logger, "position_plan_existed", logging.WARNING, symbol=plan.symbol)
        values = {f.name: getattr(plan, f.name) for f in fields(plan)}
        with self._store.transaction() as records:
            if not records.update_plan(plan.symbol, values):
                records.add_plan(plan.to_row())

    def plan(self, symbol: str) -> Plan | None:
        return self._book(symbol).plan

    # --- quiet candles (backtests) -------------------------------------------------------------------------
    def quiet_limits(self, symbol: str, view: MarketView) -> QuietLimits:
        """The limits within which the candles after ``view`` change nothing here but the best price."""
        book = self._books.get(symbol)
        if book is None or book.revision != self._executor.revision.get(symbol, 0):
            return QuietLimits(blocked=True)  # our books changed: the next candle reads them
        plan, policy = book.plan, self.policy
        if abs(book.quantity) < EPS:
            return QuietLimits(blocked=plan is not None or bool(book.legs))
        if plan is None or not plan.holds(book.quantity) or book.partials_filled > plan.partials_done:
            return QuietLimits(blocked=True)
        up, down, sign = math.inf, -math.inf, plan.sign
        if plan.stop_price is not None:
            up, down = (up, plan.stop_price) if sign > 0 else (plan.stop_price, down)
        timeframes: set[str] = set()
        trailing = policy.trailing
        if trailing is not None and plan.risk_per_unit > 0:
            if plan.trailing_active:
                level = plan.best_price  # a new best may move the stop
                if trailing[0] == "atr":
                    timeframes.add(policy.atr_timeframe)  # so may a new ATR
            else:
                level = plan.entry_price + sign * policy.trailing_activation_r * plan.risk_per_unit
            up, down = (min(up, level), down) if sign > 0 else (up, max(down, level))
        if (policy.level_break_exit and plan.level_price is not None) or (
            policy.review_exits and self._reviewer is not None
        ):
            timeframes.add(view.level_timeframe)
        close, quantity = view.candle.close, abs(book.quantity)
        keep, missing = self._match(book.legs, self._wanted_legs(plan, quantity, close))
        if missing or len(keep) != len(book.legs):
            return QuietLimits(blocked=True)  # the next candle places or cancels a protective order
        for role, level, _, _ in self._all_legs(plan, quantity):
            if role != "stop_loss" and not self._on_its_side(plan, role, level, close):
                # a target the price is beyond: placed again as soon as the price comes back
                up, down = (up, max(down, level)) if sign > 0 else (min(up, level), down)
        at = None
        if policy.stagnant_exit_hours > 0 and plan.risk_per_unit > 0:
            at = plan.opened_at + timedelta(hours=policy.stagnant_exit_hours)
        funding = view.funding
        daily = funding.rate * sign * 24 / view.funding_interval_hours if funding is not None else 0.0
        if policy.funding_exit_daily > 0 and daily >= policy.funding_exit_daily:
            return QuietLimits(blocked=True)  # the funding exit acts on the next candle
        return QuietLimits(up, down, at, frozenset(timeframes))

    def skip(self, symbol: str, high: float, low: float) -> None:
        """Quiet candles went by (their highest high and lowest low): only the best price moves."""
        book = self._books.get(symbol)
        plan = book.plan if book is not None else None
        if book is not None and plan is not None and plan.holds(book.quantity):
            plan.best_price = max(plan.best_price, high) if plan.sign > 0 else min(plan.best_price, low)

    # --- every candle ---------------------------------------------------------------------------------------
    def on_candle(self, symbol: str, view: MarketView) -> None:
        book = self._book(symbol)
        if abs(book.quantity) < EPS:
            if book.plan is not None or book.legs:
                self._flat(symbol, book)
            return
        plan = book.plan
        if plan is None or not plan.holds(book.quantity):
            plan = self._new_plan(symbol, book, view)
            if plan is None:
                return
        changed = self._follow(plan, book, view)
        exit_kind, why = self._exit_reason(plan, book, view)
        if changed:
            self._save(plan)
            book.plan = plan
        if exit_kind:
            self._exit(symbol, book, exit_kind, why)
            return
        self._sync_legs(symbol, book, view.candle.close)

    def protect(self, symbol: str, view: MarketView, entry: EntryRows | None = None) -> None:
        """Right after an entry fills: make its plan and place its protective orders at once. ``entry``: the
        order just placed with its decision and signal, as committed (spares reading them back when it is
        the entry the position now rests on)."""
        book = self._book(symbol)
        if abs(book.quantity) < EPS:
            self._flat(symbol, book)  # a close: its stops and targets go at once
            return
        stale = book.plan is None or not book.plan.holds(book.quantity)
        if stale and self._new_plan(symbol, book, view, entry) is None:
            return
        self._sync_legs(symbol, book, view.candle.close)

    def _flat(self, symbol: str, book: _Book) -> None:
        if book.plan is not None:
            with self._store.transaction() as records:
                records.delete_plan(symbol)
            book.plan = None
        for leg in book.legs:
            self._executor.cancel(leg.client_id)

    def _new_plan(
        self, symbol: str, book: _Book, view: MarketView, hint: EntryRows | None = None
    ) -> Plan | None:
        side = Side.BUY if book.quantity > 0 else Side.SELL
        entry, decision, signal = self._entry_rows(symbol, side, hint)
        stop = (decision.risk or {}).get("stop") if decision else None
        if stop is None and view.atr and self.policy.stop_atr_multiple > 0:
            stop = book.entry_price - side.sign * self.policy.stop_atr_multiple * view.atr
        if stop is not None and (book.entry_price - stop) * side.sign <= 0:
            stop = None  # not a protective stop for this position
        context = self._context(symbol)
        price = book.entry_price
        level = (
            max((p for p in context.supports if p < price), default=None)
            if side is Side.BUY
            else min((p for p in context.resistances if p > price), default=None)
        )
        plan = Plan(
            symbol=symbol, side=side.value, entry_client_id=entry.client_id if entry else "",
            signal_id=entry.signal_id if entry else None, decision_id=decision.id if decision else None,
            signal_source=signal.source if signal else "",
            analyst=decision.analyst if decision else "", regime=context.regime, entry_price=price,
            initial_quantity=abs(book.quantity), initial_stop=stop,
            risk_per_unit=abs(price - stop) if stop is not None else 0.0, stop_price=stop,
            stop_kind="stop_loss", take_profit=decision.take_profit if decision else None, partials_done=0,
            trailing_active=False, best_price=price, level_price=level,
            level_kind=("support" if side is Side.BUY else "resistance") if level is not None else "",
            opened_at=view.now,
        )  # fmt: skip
        self._save(plan, new=book.plan is None)
        book.plan = plan
        log_event(
            logger, "position_plan", symbol=symbol, side=side.value, entry=price, stop=stop,
            take_profit=plan.take_profit, level_price=level, regime=context.regime,
        )  # fmt: skip
        return plan

    def _entry_rows(self, symbol: str, side: Side, hint: EntryRows | None) -> EntryRows:
        """The entry the position rests on (the latest filled order of its side that is not reduce-only), its
        decision and its signal: the hint when the executor's latest booking in this market is that order
        filling; else read from the journal."""
        booking = self._executor.bookings.get(symbol)
        if (
            hint is not None and hint[0] is not None and booking is not None
            and booking.client_id == hint[0].client_id and booking.position is not None
            and booking.revision == self._executor.revision.get(symbol, 0)
            and hint[0].side == side.value and not hint[0].reduce_only
        ):  # fmt: skip
            return hint
        with self._store.transaction() as records:
            return records.latest_entry(symbol, side.value)

    # --- moving the stop -----------------------------------------------------------------------------------
    def _follow(self, plan: Plan, book: _Book, view: MarketView) -> bool:
        """Best price, break-even after the first partial, trailing stop. True if the plan changed."""
        sign, candle, changed = plan.sign, view.candle, False
        plan.best_price = max(plan.best_price, candle.high) if sign > 0 else min(plan.best_price, candle.low)
        if book.partials_filled > plan.partials_done:
            plan.partials_done, changed = book.partials_filled, True
            if self._better(plan, plan.entry_price) and plan.stop_kind == "stop_loss":
                plan.stop_price, plan.stop_kind = plan.entry_price, "break_even"
        trailing = self.policy.trailing
        if trailing is None or plan.risk_per_unit <= 0:
            return changed
        if not plan.trailing_active:
            excursion = (plan.best_price - plan.entry_price) * sign
            if excursion < self.policy.trailing_activation_r * plan.risk_per_unit:
                return changed
            plan.trailing_active, changed = True, True
        kind, amount = trailing
        if kind == "atr":
            if not view.atr:
                return changed
            distance = amount * view.atr
        else:
            distance = plan.best_price * amount / 100
        step = distance / 4  # move in steps of a quarter of the distance: fewer order replacements
        candidate = plan.best_price - sign * distance
        if plan.stop_price is None or (candidate - plan.stop_price) * sign >= step:
            plan.stop_price, plan.stop_kind, changed = candidate, "trailing_stop", True
        return changed

    @staticmethod
    def _better(plan: Plan, price: float) -> bool:
        return plan.stop_price is None or (price - plan.stop_price) * plan.sign > 0

    # --- exits ---------------------------------------------------------------------------------------------
    def _exit_reason(self, plan: Plan, book: _Book, view: MarketView) -> tuple[str, str]:
        sign, close, policy = plan.sign, view.candle.close, self.policy
        if plan.stop_price is not None and (close - plan.stop_price) * sign <= 0:
            return plan.stop_kind, f"closed at {close:,.2f} through the stop {plan.stop_price:,.2f}"
        level_candle = view.closed.get(view.level_timeframe)
        broken = self._level_broken(plan, level_candle)
        if policy.level_break_exit and broken:
            return "level_break", broken
        if policy.review_exits and level_candle is not None and self._reviewer is not None:
            why = self._reviewer(plan.symbol, Side(plan.side))
            if why:
                return "risk_view", why
        hours = policy.stagnant_exit_hours
        if hours > 0 and plan.risk_per_unit > 0 and view.now - plan.opened_at >= timedelta(hours=hours):
            moved = (close - plan.entry_price) * sign / plan.risk_per_unit
            if abs(moved) < policy.stagnant_max_r:
                return "time_exit", f"open {hours:g} h with only {moved:+.2f} R: stagnant"
        if view.funding is not None and policy.funding_exit_daily > 0:
            daily = view.funding.rate * sign * 24 / view.funding_interval_hours
            if daily >= policy.funding_exit_daily:
                return "funding", (
                    f"funding costs {daily:.3%} of the notional a day (FUNDING_EXIT_DAILY "
                    f"{policy.funding_exit_daily:.3%})"
                )
        return "", ""

    @staticmethod
    def _level_broken(plan: Plan, candle: Candle | None) -> str:
        """Why the level the entry depended on is broken by this closed candle ("" if it is not)."""
        level = plan.level_price
        if candle is None or level is None or (candle.close - level) * plan.sign >= 0:
            return ""
        return (
            f"{candle.timeframe} candle closed at {candle.close:,.2f} through the {plan.level_kind} "
            f"{level:,.2f} the entry depended on"
        )

    def _exit(self, symbol: str, book: _Book, exit_kind: str, why: str) -> None:
        side = Side.SELL if book.quantity > 0 else Side.BUY
        log_event(logger, "position_exit", symbol=symbol, exit=exit_kind, reason=why)
        plan = book.plan
        self.place(
            PlannedOrder(symbol, side, abs(book.quantity), True, self.policy.order_leverage,
                         f"{exit_kind.replace('_', ' ')}: {why}", role="exit", exit_kind=exit_kind),
            plan.signal_id if plan else None, plan.decision_id if plan else None,
        )  # fmt: skip

    def close_all(self, exit_kind: str, why: str) -> int:
        """Close every position with a market reduce-only order (the kill switch)."""
        with self._store.transaction() as records:
            symbols = [r.symbol for r in records.positions()]
        for symbol in symbols:
            book = self._book(symbol)
            if abs(book.quantity) > EPS:
                self._exit(symbol, book, exit_kind, why)
        return len(symbols)

    # --- protective orders ---------------------------------------------------------------------------------
    def _all_legs(self, plan: Plan, quantity: float) -> list[tuple[str, float, float, str]]:
        """(role, price, quantity, exit kind) of every protective order the plan has, wherever the price."""
        sign, legs, spec = plan.sign, [], self._spec(plan.symbol)
        if plan.stop_price is not None:
            legs.append(("stop_loss", spec.round_price(plan.stop_price), quantity, plan.stop_kind))
        if plan.take_profit is not None:
            legs.append(("take_profit", spec.round_price(plan.take_profit), quantity, "take_profit"))
        if plan.risk_per_unit > 0:
            step, smallest = float(spec.step_size), float(spec.min_quantity)
            for index, (r_multiple, fraction) in enumerate(self.policy.partials):
                if index < plan.partials_done:
                    continue
                size = min(floor_to_step(plan.initial_quantity * fraction, step), quantity)
                target = spec.round_price(plan.entry_price + sign * r_multiple * plan.risk_per_unit)
                if size >= smallest - EPS:
                    legs.append(("partial_take_profit", target, size, "partial_take_profit"))
        return legs

    @staticmethod
    def _on_its_side(plan: Plan, role: str, level: float, price: float) -> bool:
        """A stop below a long's price (above a short's), a target above it (below): else it would act at
        once, so it is not placed."""
        return (price - level) * plan.sign > 0 if role == "stop_loss" else (level - price) * plan.sign > 0

    def _wanted_legs(self, plan: Plan, quantity: float, price: float) -> list[tuple[str, float, float, str]]:
        """The protective orders the plan wants on the exchange at this price."""
        return [
            leg for leg in self._all_legs(plan, quantity) if self._on_its_side(plan, leg[0], leg[1], price)
        ]

    @staticmethod
    def _match(
        legs: list[Leg], wanted: list[tuple[str, float, float, str]]
    ) -> tuple[set[str], list[tuple[str, float, float, str]]]:
        """The open legs that are already what is wanted, and what is wanted but missing."""
        keep: set[str] = set()
        missing = []
        for role, level, quantity, exit_kind in wanted:
            match = next(
                (
                    leg for leg in legs
                    if leg.client_id not in keep and leg.role == role and leg.exit_kind == exit_kind
                    and not leg.expiring()
                    and abs(leg.price - level) <= 1e-9 * level
                    and abs(leg.quantity - quantity) <= 1e-9 * max(1.0, quantity)
                ),
                None,
            )  # fmt: skip
            if match is not None:
                keep.add(match.client_id)
            else:
                missing.append((role, level, quantity, exit_kind))
        return keep, missing

    def _sync_legs(self, symbol: str, book: _Book, price: float) -> None:
        """Place what the plan wants and is missing, then cancel what it no longer wants, except an order
        whose replacement (of its role) has not gone out: refused, or of unknown outcome. A stop is never
        cancelled before the stop that replaces it works on the exchange."""
        plan = book.plan
        if plan is None:
            return
        keep, to_place = self._match(book.legs, self._wanted_legs(plan, abs(book.quantity), price))
        side = Side.SELL if book.quantity > 0 else Side.BUY
        unconfirmed = {
            leg.role
            for leg in book.legs
            if leg.client_id in keep and leg.status == OrderStatus.PENDING_SUBMIT.value
        }
        for role, level, quantity, exit_kind in to_place:  # the new order first, then cancel the old one
            kind = OrderType.STOP_MARKET if role == "stop_loss" else OrderType.LIMIT
            client_id = self.place(
                PlannedOrder(
                    symbol, side, quantity, True, self.policy.order_leverage,
                    f"{exit_kind.replace('_', ' ')} at {level:,.2f}", order_type=kind,
                    trigger_price=level if kind is OrderType.STOP_MARKET else None,
                    limit_price=level if kind is OrderType.LIMIT else None,
                    parent_client_id=plan.entry_client_id or None, role=role, exit_kind=exit_kind,
                ),
                plan.signal_id, plan.decision_id,
            )  # fmt: skip
            if not self._working(client_id):
                unconfirmed.add(role)
        for leg in book.legs:
            if leg.client_id in keep:
                continue
            if leg.role in unconfirmed:
                log_event(logger, "protective_order_kept", logging.WARNING, symbol=symbol, role=leg.role,
                          client_id=leg.client_id, why="its replacement has not gone out")  # fmt: skip
                continue
            self._executor.cancel(leg.client_id)

    def _working(self, client_id: str) -> bool:
        """Is the order on the exchange (working, or done)?"""
        with self._store.transaction() as records:
            row = records.order(client_id)
        return row is not None and row.status in ACKNOWLEDGED

    def place(self, plan: PlannedOrder, signal_id: int | None = None, decision_id: int | None = None) -> str:
        """Commit the order (PENDING_SUBMIT) with the signal and decision it serves, then send it."""
        with self._store.transaction() as records:
            row = self._executor.pending_row(plan, signal_id, decision_id)
            records.add_order(row)
            client_id = row.client_id
        self._executor.submit(client_id, plan.leverage)
        return client_id

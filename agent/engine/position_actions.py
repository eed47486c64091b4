"""What a trader does to a position or an order by hand (the dashboard's buttons, through the agent API):
close all or part of a position, move its stop, cancel an order.

Each action runs under ``engine.lock`` (one writer of orders at a time, as the loop and the kill switch) and
passes its rules first; a refusal changes nothing:
- close: ``fraction`` in (0, 1]; the quantity is the position's times the fraction rounded down to the
  market's step (the whole position at 1), refused below the market's minimum or when it would leave less
  than the minimum open; refused while an exit of the market is still working (no close sent twice). It
  goes out as a reduce-only market order journalled as any engine order (committed PENDING_SUBMIT with its
  client id before the exchange is called; a ``request_id`` makes the client id, so the same request sent
  again places nothing), then the position's protective orders follow the new quantity.
- move stop: the new stop must be on the protective side of the mark price and of the latest close (below
  them for a long, above for a short) and no further from the price than the current stop (a move that
  widens the risk is refused); the plan's stop moves and the position manager places the new stop before it
  cancels the old one.
- cancel: only a working order; a position's protective stop is refused (close the position instead), and
  so is a partial take-profit (the plan places it again); cancelling a take-profit drops it from the plan.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from agent.engine.positions import PROTECTIVE, WORKING
from agent.execution.orders import PlannedOrder
from agent.risk.sizing import floor_to_step
from shared.errors import FieldProblem, InvalidInput, Rejected
from shared.exchange.markets import MarketSpec
from shared.logs import log_event
from shared.models import OrderType, Side

if TYPE_CHECKING:
    from agent.engine.engine import Engine

logger = logging.getLogger(__name__)
EPS = 1e-9
MANUAL_EXIT = "manual"


class ActionRefused(Rejected):
    """A manual action a risk rule refuses: nothing was sent. ``rule`` names the rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class ActionInputError(InvalidInput):
    FIELD = "body"


class NotFound(ActionRefused):
    """No such position or order."""

    def __init__(self, message: str) -> None:
        super().__init__("not_found", message)


@dataclass
class ActionResult:
    """What an action did, as our books say afterwards."""

    action: str
    symbol: str
    client_id: str = ""  # the order placed (close) or cancelled
    status: str = ""  # that order's status now
    quantity: float = 0.0  # what was closed
    position: float = 0.0  # the position's signed quantity now
    stop: float | None = None  # the plan's stop now
    stops_working: list[float] = field(default_factory=list)  # the working protective stops' triggers
    repeated: bool = False  # the same request_id was done before: nothing new was sent

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the rules (pure) ---------------------------------------------------------------------------------------
def close_quantity(position: float, fraction: Any, spec: MarketSpec) -> float:
    """The quantity a close of ``fraction`` of the (signed) ``position`` sends: the whole position at 1, else
    rounded down to the market's step; refused below the minimum or when it leaves less than the minimum."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
        raise ActionInputError([FieldProblem("fraction", "must be a number in (0, 1]")])
    held = abs(position)
    if held < EPS:
        raise ActionRefused("no_position", "there is no open position to close")
    step, smallest = float(spec.step_size), float(spec.min_quantity)
    if fraction >= 1:
        return floor_to_step(held, step)  # the whole position, without float dust
    quantity = min(floor_to_step(held * fraction, step), held)
    if quantity < smallest - EPS:
        raise ActionRefused(
            "min_quantity",
            f"{fraction:g} of {held:g} rounds to {quantity:g} at the step {spec.step_size}: below the "
            f"market's minimum {spec.min_quantity}",
        )
    left = round(held - quantity, 9)
    if EPS < left < smallest - EPS:
        raise ActionRefused(
            "min_quantity",
            f"closing {quantity:g} of {held:g} would leave {left:g} open, below the market's minimum "
            f"{spec.min_quantity}: close the whole position",
        )
    return quantity


def check_stop(side: Side, price: Any, mark: float, close: float, current: float | None) -> float:
    """The new stop of a position of ``side``, if it may go there: on the protective side of the mark and the
    latest close, and no further from them than the current stop (a move never widens the risk)."""
    if isinstance(price, bool) or not isinstance(price, int | float) or not price > 0 or price != price:
        raise ActionInputError([FieldProblem("price", "must be a positive number")])
    stop = float(price)
    long = side is Side.BUY
    for name, level in (("mark price", mark), ("latest close", close)):
        if (long and stop >= level) or (not long and stop <= level):
            where = "below" if long else "above"
            raise ActionRefused(
                "stop_side",
                f"a {'long' if long else 'short'}'s stop must be {where} the {name} {level:,.2f}: "
                f"{stop:,.2f} is not",
            )
    if current is not None and ((long and stop < current - EPS) or (not long and stop > current + EPS)):
        raise ActionRefused(
            "stop_widening",
            f"moving the stop from {current:,.2f} to {stop:,.2f} widens the risk: a stop only moves towards "
            "the price",
        )
    return stop


def client_id_for(action: str, symbol: str, request_id: str) -> str:
    """The client id of the order a request makes: the same request, the same id (so it is placed once)."""
    digest = hashlib.sha256(f"{action}:{symbol}:{request_id}".encode()).hexdigest()[:32]
    return f"bfa-{digest}"


def request_id_of(value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > 100:
        raise ActionInputError([FieldProblem("request_id", "must be a string of at most 100 characters")])
    return value


# --- the actions --------------------------------------------------------------------------------------------
class PositionActions:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def close(
        self, symbol: str, fraction: Any, why: str, request_id: str = "", exit_kind: str = MANUAL_EXIT
    ) -> ActionResult:
        """Close ``fraction`` of the position in ``symbol`` with a reduce-only market order (the trade's exit
        reason ``exit_kind``: manual, or ai_review)."""
        engine = self._engine
        with engine.lock:
            client_id = client_id_for("close", symbol, request_id) if request_id else ""
            if client_id:
                with engine.store.transaction() as records:
                    done = records.order(client_id)
                if done is not None:
                    return self._result("close", symbol, client_id, done.quantity, repeated=True)
            with engine.store.transaction() as records:
                row = records.position(symbol)
                held = row.quantity if row is not None else 0.0
                exits = [o.client_id for o in records.orders(WORKING, symbol) if o.role in ("exit", "close")]
            if abs(held) < EPS:
                raise NotFound(f"there is no open position in {symbol}")
            if exits:
                raise ActionRefused("exit_in_flight", f"an exit of {symbol} is still working: {exits[0]}")
            quantity = close_quantity(held, fraction, engine.exchange.market_spec(symbol))
            plan = engine.manager.plan(symbol)
            side = Side.SELL if held > 0 else Side.BUY
            reason = f"{exit_kind.replace('_', ' ')} close of {quantity:g}" + (f": {why}" if why else "")
            order = PlannedOrder(
                symbol, side, quantity, True, engine.policy.order_leverage, reason,
                order_type=OrderType.MARKET, role="exit", exit_kind=exit_kind,
            )  # fmt: skip
            with engine.store.transaction() as records:
                pending = engine.executor.pending_row(
                    order, plan.signal_id if plan else None, plan.decision_id if plan else None
                )
                if client_id:
                    pending.client_id = client_id
                records.add_order(pending)
                client_id = pending.client_id
            log_event(logger, "manual_close", symbol=symbol, quantity=quantity, client_id=client_id, why=why)
            engine.executor.submit(client_id, engine.policy.order_leverage)
            view = engine.views.get(symbol)
            if view is not None:
                engine.manager.protect(symbol, view)  # the stops and targets follow the new quantity
        engine.publish_status()
        return self._result("close", symbol, client_id, quantity)

    def move_stop(self, symbol: str, price: Any, why: str) -> ActionResult:
        """Move the position's stop to ``price`` (towards the price only)."""
        engine = self._engine
        with engine.lock:
            with engine.store.transaction() as records:
                row = records.position(symbol)
                held = row.quantity if row is not None else 0.0
            if abs(held) < EPS:
                raise NotFound(f"there is no open position in {symbol}")
            plan = engine.manager.plan(symbol)
            view = engine.views.get(symbol)
            mark = engine.exchange.mark_price(symbol)
            if plan is None or not plan.holds(held):
                raise ActionRefused("no_plan", f"the position in {symbol} has no plan yet to move a stop in")
            if view is None or mark is None:
                raise ActionRefused("market_data", f"no market data for {symbol} yet")
            side = Side(plan.side)
            stop = check_stop(side, price, mark, view.candle.close, plan.stop_price)
            stop = engine.exchange.market_spec(symbol).round_price(stop)
            before = plan.stop_price
            plan.stop_price = stop
            if plan.initial_stop is None:  # a position that had no stop gets its risk per unit from this one
                plan.initial_stop, plan.risk_per_unit = stop, abs(plan.entry_price - stop)
            values = {
                "stop_price": plan.stop_price, "initial_stop": plan.initial_stop,
                "risk_per_unit": plan.risk_per_unit,
            }  # fmt: skip
            with engine.store.transaction() as records:
                records.update_plan(symbol, values)
            log_event(logger, "manual_stop_move", symbol=symbol, before=before, stop=stop, why=why)
            engine.manager.protect(symbol, view)  # the new stop first, then the old one cancelled
        engine.publish_status()
        return self._result("move_stop", symbol)

    def cancel_order(self, client_id: str) -> ActionResult:
        """Cancel one working order of ours."""
        engine = self._engine
        with engine.lock:
            with engine.store.transaction() as records:
                row = records.order(client_id)
                if row is None:
                    raise NotFound(f"no order {client_id}")
                symbol, role, status = row.symbol, row.role, row.status
                position = records.position(symbol)
                held = position.quantity if position is not None else 0.0
            if status not in WORKING:
                raise ActionRefused("not_working", f"order {client_id} is {status}: nothing to cancel")
            if role in PROTECTIVE and abs(held) > EPS:
                if role == "stop_loss":
                    raise ActionRefused(
                        "protective_stop",
                        f"order {client_id} is the protective stop of the open {symbol} position: close the "
                        "position instead (or move the stop)",
                    )
                if role == "partial_take_profit":
                    raise ActionRefused(
                        "managed_order",
                        f"order {client_id} is a partial take-profit of the {symbol} position's plan, which "
                        "would place it again: close part of the position instead",
                    )
                plan = engine.manager.plan(symbol)
                if plan is not None and plan.take_profit is not None:  # else the plan places it again
                    plan.take_profit = None
                    with engine.store.transaction() as records:
                        records.update_plan(symbol, {"take_profit": None})
            log_event(logger, "manual_cancel", symbol=symbol, client_id=client_id, role=role)
            engine.executor.cancel(client_id)
        engine.publish_status()
        return self._result("cancel", symbol, client_id)

    def _result(
        self, action: str, symbol: str, client_id: str = "", quantity: float = 0.0, repeated: bool = False
    ) -> ActionResult:
        engine = self._engine
        with engine.store.transaction() as records:
            order = records.order(client_id) if client_id else None
            position = records.position(symbol)
            stops = [o.trigger_price or 0.0 for o in records.orders(WORKING, symbol, roles=("stop_loss",))]
        plan = engine.manager.plan(symbol)
        return ActionResult(
            action, symbol, client_id, order.status if order is not None else "", quantity,
            position.quantity if position is not None else 0.0,
            plan.stop_price if plan is not None else None, sorted(stops), repeated,
        )  # fmt: skip

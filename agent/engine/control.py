"""What the API asks of the engine outside its loop: algos started and cancelled, the kill switch.

Each entry point takes ``engine.lock`` (one writer of orders at a time, as the loop), so an algo's slice, a
signal's order and the kill switch's cancels never interleave. Algo slices are gated here too: the runner
asks ``slice_verdict`` (``agent.risk.slices`` on the engine's books, account, market and trading state)
before each slice, wherever it is stepped from.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from agent.execution.orders import order_ref
from agent.risk.slices import Slice, SliceContext, SliceVerdict, assess_slice, is_slice
from shared.errors import BluefinAIError, Rejected
from shared.logs import log_event
from shared.models import OrderStatus, OrderType

if TYPE_CHECKING:
    from agent.engine.engine import Engine
    from agent.execution.algos import AlgoRequest

logger = logging.getLogger(__name__)
IN_FLIGHT = (OrderStatus.PENDING_SUBMIT.value, OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value)
EPS = 1e-12


class AlgoVetoed(Rejected):
    """The algo as a whole does not pass the risk gate: nothing was started."""

    def __init__(self, verdict: SliceVerdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


# --- the risk gate of slices --------------------------------------------------------------------------------
def slice_context(engine: Engine, piece: Slice) -> SliceContext:
    """The engine's books (the position with the algo slices still in flight), the account, the market's
    facts and the trading state, for one slice."""
    symbol = piece.symbol
    with engine.store.transaction() as records:
        positions = {r.symbol: r.quantity for r in records.positions(also=symbol)}
        in_flight = records.orders(IN_FLIGHT, symbol)
        pending = sum(
            (o.quantity - o.filled_quantity) * (1 if o.side == "BUY" else -1)
            for o in in_flight
            if is_slice(o.parent_client_id)
        )
        unknown = [
            o.client_id for o in in_flight
            if not is_slice(o.parent_client_id)
            and (o.status == OrderStatus.PENDING_SUBMIT.value or o.order_type == OrderType.MARKET.value)
        ]  # fmt: skip
    mark = engine.exchange.mark_price(symbol)
    price = piece.price or mark or 0.0
    others = {
        s: q * (engine.exchange.mark_price(s) or price) for s, q in positions.items() if s != symbol and q
    }
    account = engine.exchange.account()
    spec = engine.exchange.market_spec(symbol)
    market = engine.markets.get(symbol)
    atr = market.indicator(engine.policy.atr_timeframe, "atr") if market is not None else None
    return SliceContext(
        price=price, position=positions.get(symbol, 0.0) + pending, equity=account.equity,
        free_collateral=account.free_collateral, leverage=engine.policy.order_leverage,
        other_notionals=others,
        trading_state=engine.guard.state, state_reason=engine.guard.status.reason,
        blocked=_blocked(engine, symbol, unknown, mark), atr=atr if atr == atr else None,
        maintenance_ratio=spec.maintenance_margin_ratio, market_max_leverage=spec.max_leverage,
    )  # fmt: skip


def _blocked(engine: Engine, symbol: str, unknown: list[str], mark: float | None) -> str:
    """Why a slice growing exposure may not go: the reasons that block any new entry (the engine's), and
    no price to value it at."""
    if mark is None:
        return f"no market data for {symbol}"
    return engine.decisions.blocked(symbol, unknown[0] if unknown else None)


def slice_verdict(engine: Engine, piece: Slice) -> SliceVerdict:
    """The runner's gate: every slice of every algo passes here before it is recorded and sent."""
    return assess_slice(piece, slice_context(engine, piece), engine.policy)


# --- algos --------------------------------------------------------------------------------------------------
def start_algo(engine: Engine, request: AlgoRequest) -> str:
    """Start an algo under the engine lock; its whole quantity must pass the gate as one slice first (else
    ``AlgoVetoed``, nothing started), then its first slice goes out (each slice is gated again)."""
    with engine.lock:
        whole = Slice("", request.symbol, request.side, request.quantity, request.limit_price, request.kind)
        verdict = slice_verdict(engine, whole)
        if not verdict.approved:
            log_event(logger, "algo_vetoed", logging.WARNING, symbol=request.symbol, rule=verdict.rule,
                      reason=verdict.reason)  # fmt: skip
            raise AlgoVetoed(verdict)
        return engine.algos.start(request, engine.market_now())


def cancel_algo(engine: Engine, algo_id: str) -> dict[str, Any] | None:
    """Stop an algo and cancel its open slices, under the engine lock; its progress, or None if unknown."""
    with engine.lock:
        view = engine.algos.progress(algo_id)
        if view is None:
            return None
        if view["status"] == "RUNNING":
            engine.algos.cancel(algo_id)
        return engine.algos.progress(algo_id)


# --- the kill switch ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FailedCancel:
    client_id: str
    symbol: str
    error: str


@dataclass(frozen=True)
class NotClosed:
    symbol: str
    quantity: float
    error: str


@dataclass
class KillReport:
    """What the kill switch did, order by order: nothing is reported cancelled or closed that is not."""

    state: str
    reason: str
    cancelled_orders: list[str] = field(default_factory=list)
    failed_cancels: list[FailedCancel] = field(default_factory=list)
    closed_positions: list[str] = field(default_factory=list)
    positions_not_closed: list[NotClosed] = field(default_factory=list)
    cancelled_algos: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failed_cancels and not self.positions_not_closed

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}


def kill(engine: Engine, reason: str, close_positions: bool) -> KillReport:
    """HALTED first (persisted: no new order follows), then under the engine lock: every algo stopped, every
    working order cancelled except those protecting a position we keep (all of them with
    ``close_positions``), each checked in our books afterwards; optionally every position closed."""
    engine.guard.kill(engine.market_now(), reason)
    report = KillReport(engine.guard.state, reason)
    with engine.lock:
        for algo_id in engine.algos.running():
            engine.algos.stop(algo_id, "kill switch")
            report.cancelled_algos.append(algo_id)
        with engine.store.transaction() as records:
            targets = [
                o.client_id for o in records.orders(IN_FLIGHT)  # a PENDING_SUBMIT may be on the exchange
                if close_positions or not o.reduce_only or is_slice(o.parent_client_id)
            ]  # fmt: skip
        for client_id in targets:
            _cancel_one(engine, client_id, report)
        if close_positions:
            _close_all(engine, reason, report)
    engine.publish_status()
    log_event(
        logger, "kill_switch", logging.ERROR, reason=reason, cancelled=len(report.cancelled_orders),
        failed=len(report.failed_cancels), closed=len(report.closed_positions),
        not_closed=len(report.positions_not_closed), algos=len(report.cancelled_algos), alert=True,
    )  # fmt: skip
    return report


def _cancel_one(engine: Engine, client_id: str, report: KillReport) -> None:
    """Cancel one order (the executor retries); what our books say afterwards decides whether it is
    reported cancelled. One still working gets a last attempt, whose error is the one reported."""
    engine.executor.cancel(client_id)
    status, symbol = _status(engine, client_id)
    error = ""
    if status in IN_FLIGHT:
        error = _last_attempt(engine, client_id)
        status, symbol = _status(engine, client_id)
    if status == OrderStatus.CANCELED.value:
        report.cancelled_orders.append(client_id)
        return
    if status in IN_FLIGHT:
        error = error or f"the exchange did not confirm the cancel: still {status}"
    else:
        error = f"not cancelled: {status}" + (f" ({error})" if error else "")
    report.failed_cancels.append(FailedCancel(client_id, symbol, error))


def _status(engine: Engine, client_id: str) -> tuple[str, str]:
    with engine.store.transaction() as records:
        row = records.order(client_id)
        return (row.status, row.symbol) if row is not None else ("unknown", "")


def _last_attempt(engine: Engine, client_id: str) -> str:
    """One more cancel straight to the exchange: its error ("" when it went through)."""
    with engine.store.transaction() as records:
        row = records.order(client_id)
        ref = order_ref(row) if row is not None else None
    try:
        engine.executor.apply_result(engine.exchange.cancel_order(client_id, ref))
    except BluefinAIError as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def _close_all(engine: Engine, reason: str, report: KillReport) -> None:
    """Close every position with a reduce-only market order; a position still open afterwards is reported
    with the state of its exit order."""
    with engine.store.transaction() as records:
        held = [r.symbol for r in records.positions() if abs(r.quantity) > EPS]
    error = ""
    try:
        engine.manager.close_all("kill_switch", reason or "kill switch")
    except BluefinAIError as exc:
        error = str(exc)
    with engine.store.transaction() as records:
        left = {r.symbol: r.quantity for r in records.positions() if abs(r.quantity) > EPS}
        exits = {
            o.symbol: f"exit order {o.client_id} {o.status}" + (f": {o.reason}" if o.reason else "")
            for o in records.orders([s.value for s in OrderStatus])
            if o.exit_kind == "kill_switch" and o.symbol in left
        }
    for symbol in held:
        if symbol in left:
            why = error or exits.get(symbol, "no exit order was placed")
            report.positions_not_closed.append(NotClosed(symbol, left[symbol], why))
        else:
            report.closed_positions.append(symbol)

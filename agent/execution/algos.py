"""Execution algorithms: TWAP and iceberg, running on the market clock, resumable after a restart.

- TWAP: ``slices`` limit orders at the touch (our side of the book, or the mark without a book), one
  every ``duration / slices``; whatever a slice has not filled when the next one is due is cancelled and
  sent as a market order (the fallback), so the whole quantity is done by the end.
- Iceberg: one visible limit order of ``visible_quantity`` at ``limit_price`` at a time, replenished when
  it fills, until the total is done.

State lives in the ``algos`` table and the slices are ordinary order rows (``parent_client_id``), placed
with the same safety rules as every order; after a crash the runner simply continues from the table, and
in-flight slices are resolved by reconciliation. ``cancel`` stops an algo and cancels its open slice.

Every slice (and every fallback) asks the gate first (the engine's: ``agent.engine.control.slice_verdict``,
``agent.risk.slices``): a vetoed slice is never recorded nor sent; the algo stops as VETOED, its reason
naming the slice, the rule and why. One step runs at a time, and a slice is counted in the same transaction
that records its order (only if the count is still the one it was decided on), so none goes out twice.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from agent.engine.control import slice_verdict
from agent.execution.orders import OrderExecutor, PlannedOrder
from agent.journal.store import Store
from agent.risk.sizing import floor_to_step
from agent.risk.slices import ALGO_PREFIX, Slice, SliceVerdict
from shared.db import AlgoRow, OrderRow
from shared.errors import FieldProblem, InvalidInput
from shared.exchange.base import Exchange
from shared.logs import log_event
from shared.models import OrderStatus, OrderType, Side

if TYPE_CHECKING:
    from agent.engine.engine import Engine

logger = logging.getLogger(__name__)
OPEN = (OrderStatus.PENDING_SUBMIT.value, OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value)
EPS = 1e-12
FINISHED = ("DONE", "CANCELED", "VETOED")


AlgoKind = Literal["twap", "iceberg"]


@dataclass(frozen=True)
class AlgoRequest:
    kind: AlgoKind
    symbol: str
    side: Side
    quantity: float
    slices: int = 1
    duration_s: float = 0.0
    visible_quantity: float | None = None
    limit_price: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if not self.quantity > 0:
            problems.append(FieldProblem("quantity", "must be positive"))
        if self.kind == "twap" and not (1 <= self.slices <= 1000 and self.duration_s >= 0):
            problems.append(FieldProblem("slices", "must be 1..1000 with duration_s >= 0"))
        if self.kind == "iceberg":
            if not (self.visible_quantity and 0 < self.visible_quantity <= self.quantity):
                problems.append(FieldProblem("visible_quantity", "must be positive and at most quantity"))
            if not (self.limit_price and self.limit_price > 0):
                problems.append(FieldProblem("limit_price", "an iceberg needs a positive limit price"))
        if self.kind not in ("twap", "iceberg"):
            problems.append(FieldProblem("kind", "must be twap or iceberg"))
        if problems:
            raise InvalidInput(problems)


Gate = Callable[[Slice], SliceVerdict]


class AlgoRunner:
    """Starts, steps and cancels algos; every slice asks ``gate`` (the risk gate of slices) first. One step
    at a time (its own lock, taken inside the engine's by every engine-side caller): a slice is claimed (its
    number counted) in the same transaction that records its order, so it is never sent twice."""

    def __init__(
        self, store: Store, executor: OrderExecutor, exchange: Exchange, leverage: float, gate: Gate
    ) -> None:
        self._store = store
        self._executor = executor
        self._exchange = exchange
        self._leverage = leverage
        self._gate = gate
        self._lock = threading.RLock()
        self._any_running: bool | None = None  # None: not known yet (read the table once)

    @classmethod
    def for_engine(cls, engine: Engine) -> AlgoRunner:
        """The engine's runner: each slice gated on the engine's books, account and trading state."""
        gate = partial(slice_verdict, engine)
        return cls(engine.store, engine.executor, engine.exchange, engine.policy.order_leverage, gate)

    def start(self, request: AlgoRequest, now: datetime) -> str:
        client_id = f"{ALGO_PREFIX}{uuid.uuid4().hex[:16]}"
        interval = request.duration_s / request.slices if request.kind == "twap" else 0.0
        with self._lock:
            with self._store.transaction() as records:
                records.add_algo(
                    AlgoRow(
                        client_id=client_id, kind=request.kind, symbol=request.symbol,
                        side=request.side.value, quantity=request.quantity,
                        slices=request.slices if request.kind == "twap" else 0,
                        interval_s=interval, visible_quantity=request.visible_quantity,
                        limit_price=request.limit_price, slices_sent=0, status="RUNNING", reason="",
                        next_at=now, created_at=now,
                    )
                )  # fmt: skip
            log_event(logger, "algo_started", algo=client_id, kind=request.kind, quantity=request.quantity)
            self._any_running = True
            self.step(now)
        return client_id

    @property
    def active(self) -> bool:
        """Might an algo be running (unknown counts as yes)?"""
        return self._any_running is not False

    def running(self) -> list[str]:
        with self._store.transaction() as records:
            running = records.running_algos()
        self._any_running = bool(running)
        return running

    def step(self, now: datetime) -> None:
        if self._any_running is False:
            return
        with self._lock:
            for client_id in self.running():
                self._step(client_id, now)

    def _children(self, client_id: str) -> list[OrderRow]:
        with self._store.transaction() as records:
            return records.children(client_id)

    def _step(self, client_id: str, now: datetime) -> None:
        with self._store.transaction() as records:
            algo = records.algo(client_id)
            assert algo is not None
            if algo.status != "RUNNING":
                return
            kind, symbol, side, quantity = algo.kind, algo.symbol, Side(algo.side), algo.quantity
            due, sent = now >= algo.next_at, algo.slices_sent
        children = self._children(client_id)
        filled = sum(c.filled_quantity for c in children)
        open_children = [c for c in children if c.status in OPEN]
        if filled >= quantity - EPS:
            self._set(client_id, status="DONE", reason=f"filled {filled:g}")
            return
        if kind == "iceberg":
            if not open_children:
                with self._store.transaction() as records:
                    algo = records.algo(client_id)
                    assert (
                        algo is not None
                        and algo.visible_quantity is not None
                        and algo.limit_price is not None
                    )
                    visible, limit = algo.visible_quantity, algo.limit_price
                piece = Slice(client_id, symbol, side, min(visible, quantity - filled), limit, "iceberg")
                self._send(piece, OrderType.LIMIT, sent)
            return
        if not due:
            return
        for child in open_children:  # a slice that did not fill in its time: cancel, then market
            self._executor.cancel(child.client_id)
        children = self._children(client_id)
        leftover = sum(
            c.quantity - c.filled_quantity
            for c in children
            if c.client_id in {o.client_id for o in open_children} and c.status not in OPEN
        )
        if leftover > EPS:
            fallback = Slice(client_id, symbol, side, leftover, None, "twap fallback")
            if not self._send(fallback, OrderType.MARKET, None):
                return
        with self._store.transaction() as records:
            algo = records.algo(client_id)
            assert algo is not None
            sent, total, interval = algo.slices_sent, algo.slices, algo.interval_s
        filled = sum(c.filled_quantity for c in self._children(client_id))
        if sent < total:
            size = (quantity - filled) / (total - sent)
            next_at = now + timedelta(seconds=interval)
            if size > EPS:
                piece = Slice(client_id, symbol, side, size, self._touch(symbol, side), "twap slice")
                self._send(piece, OrderType.LIMIT, sent, next_at)
            else:
                self._set(client_id, slices_sent=sent + 1, next_at=next_at)
        elif filled >= quantity - EPS:
            self._set(client_id, status="DONE", reason=f"filled {filled:g}")

    def _touch(self, symbol: str, side: Side) -> float:
        book = self._exchange.orderbook(symbol)
        if book is not None:
            return book.bids[0][0] if side is Side.BUY else book.asks[0][0]
        mark = self._exchange.mark_price(symbol)
        if mark is None:
            raise ValueError(f"no price for {symbol}")
        return mark

    def _send(
        self, piece: Slice, kind: OrderType, claim: int | None, next_at: datetime | None = None
    ) -> bool:
        """Send one slice through the risk gate. ``claim``: the slice number it takes (slices_sent as read;
        the order is recorded only if that is still the count, in the same transaction that counts it), None
        for a fallback. False when the algo must not go on this step: vetoed, or the slice was taken."""
        spec = self._exchange.market_spec(piece.symbol)  # slices go out on the market's step and tick
        quantity = floor_to_step(piece.quantity, float(spec.step_size))
        price = None if piece.price is None else spec.round_price(piece.price, piece.side, passive=True)
        piece = replace(piece, quantity=quantity, price=price)
        if quantity < float(spec.min_quantity) - EPS:
            log_event(logger, "algo_slice_too_small", parent=piece.algo, quantity=quantity)
            if claim is not None:
                self._set(piece.algo, slices_sent=claim + 1, **({"next_at": next_at} if next_at else {}))
            return True
        verdict = self._gate(piece)
        if not verdict.approved:
            self._veto(piece, verdict)
            return False
        plan = PlannedOrder(piece.symbol, piece.side, quantity, verdict.reduce_only, self._leverage,
                            piece.role, order_type=kind, parent_client_id=piece.algo,
                            role=piece.role.replace(" ", "_"))  # fmt: skip
        with self._store.transaction() as records:
            algo = records.algo(piece.algo)
            if algo is None or algo.status != "RUNNING" or (claim is not None and algo.slices_sent != claim):
                log_event(logger, "algo_slice_already_taken", parent=piece.algo, slice=claim)
                return False
            if claim is not None:
                algo.slices_sent = claim + 1
                if next_at is not None:
                    algo.next_at = next_at
            row = self._executor.pending_row(plan, None, None)
            row.limit_price = price
            records.add_order(row)
            client_id = row.client_id
        self._executor.submit(client_id, self._leverage)
        return True

    def _veto(self, piece: Slice, verdict: SliceVerdict) -> None:
        """A vetoed slice is not sent: the algo stops, and its reason says which slice and why."""
        reason = f"{piece.role} of {piece.quantity:g} vetoed by risk ({verdict.rule}): {verdict.reason}"
        log_event(
            logger, "algo_slice_vetoed", logging.WARNING, algo=piece.algo, role=piece.role,
            quantity=piece.quantity, rule=verdict.rule, reason=verdict.reason,
        )  # fmt: skip
        self._set(piece.algo, status="VETOED", reason=reason)

    def _set(self, client_id: str, **values: Any) -> None:
        with self._store.transaction() as records:
            algo = records.algo(client_id)
            assert algo is not None
            for key, value in values.items():
                setattr(algo, key, value)
        if values.get("status") in FINISHED:
            log_event(
                logger, "algo_finished", algo=client_id, status=values["status"], reason=values.get("reason")
            )

    def cancel(self, client_id: str, reason: str = "cancelled by request") -> None:
        """Stop the algo and cancel its open slices."""
        with self._lock:
            self.stop(client_id, reason)
            for child in self._children(client_id):
                if child.status in OPEN:
                    self._executor.cancel(child.client_id)

    def stop(self, client_id: str, reason: str) -> None:
        """Stop the algo (no slice follows); its open slices are left to the caller (the kill switch)."""
        with self._lock:
            self._set(client_id, status="CANCELED", reason=reason)

    def progress(self, client_id: str) -> dict[str, Any] | None:
        with self._store.transaction() as records:
            algo = records.algo(client_id)
            if algo is None:
                return None
            view: dict[str, Any] = {
                "id": algo.client_id, "kind": algo.kind, "symbol": algo.symbol, "side": algo.side,
                "quantity": algo.quantity, "status": algo.status, "reason": algo.reason,
                "slices": algo.slices, "slices_sent": algo.slices_sent,
                "visible_quantity": algo.visible_quantity, "limit_price": algo.limit_price,
                "interval_s": algo.interval_s,
                "created_at": algo.created_at.isoformat() if algo.created_at else None,
            }  # fmt: skip
        children = self._children(client_id)
        filled = sum(c.filled_quantity for c in children)
        view.update(
            filled=filled,
            progress=filled / float(view["quantity"]),
            orders=[(c.client_id, c.role, c.status) for c in children],
        )
        return view

"""Execution algorithms: TWAP and iceberg, running on the market clock, resumable after a restart.

- TWAP: ``slices`` limit orders at the touch (our side of the book, or the mark without a book), one
  every ``duration / slices``; whatever a slice has not filled when the next one is due is cancelled and
  sent as a market order (the fallback), so the whole quantity is done by the end.
- Iceberg: one visible limit order of ``visible_quantity`` at ``limit_price`` at a time, replenished when
  it fills, until the total is done.

State lives in the ``algos`` table and the slices are ordinary order rows (``parent_client_id``), placed
with the same safety rules as every order; after a crash the runner simply continues from the table, and
in-flight slices are resolved by reconciliation. ``cancel`` stops an algo and cancels its open slice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from agent.execution.orders import OrderExecutor, PlannedOrder
from agent.journal.store import Store
from agent.risk.sizing import floor_to_step
from shared.db import AlgoRow, OrderRow
from shared.exchange.base import Exchange
from shared.logs import log_event
from shared.models import OrderStatus, OrderType, Side

logger = logging.getLogger(__name__)
OPEN = (OrderStatus.PENDING_SUBMIT.value, OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value)
EPS = 1e-12


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
            problems.append("quantity: must be positive")
        if self.kind == "twap" and not (1 <= self.slices <= 1000 and self.duration_s >= 0):
            problems.append("slices: must be 1..1000 with duration_s >= 0")
        if self.kind == "iceberg":
            if not (self.visible_quantity and 0 < self.visible_quantity <= self.quantity):
                problems.append("visible_quantity: must be positive and at most quantity")
            if not (self.limit_price and self.limit_price > 0):
                problems.append("limit_price: an iceberg needs a positive limit price")
        if self.kind not in ("twap", "iceberg"):
            problems.append("kind: must be twap or iceberg")
        if problems:
            raise ValueError("; ".join(problems))


class AlgoRunner:
    def __init__(self, store: Store, executor: OrderExecutor, exchange: Exchange, leverage: float) -> None:
        self._store = store
        self._executor = executor
        self._exchange = exchange
        self._leverage = leverage
        self._any_running: bool | None = None  # None: not known yet (read the table once)

    def start(self, request: AlgoRequest, now: datetime) -> str:
        client_id = f"algo-{uuid.uuid4().hex[:16]}"
        interval = request.duration_s / request.slices if request.kind == "twap" else 0.0
        with self._store.transaction() as records:
            records.add_algo(
                AlgoRow(
                    client_id=client_id, kind=request.kind, symbol=request.symbol, side=request.side.value,
                    quantity=request.quantity, slices=request.slices if request.kind == "twap" else 0,
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
        for client_id in self.running():
            self._step(client_id, now)

    def _children(self, client_id: str) -> list[OrderRow]:
        with self._store.transaction() as records:
            return records.children(client_id)

    def _step(self, client_id: str, now: datetime) -> None:
        with self._store.transaction() as records:
            algo = records.algo(client_id)
            assert algo is not None
            kind, symbol, side, quantity = algo.kind, algo.symbol, Side(algo.side), algo.quantity
            due = now >= algo.next_at
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
                self._send(
                    client_id,
                    symbol,
                    side,
                    min(visible, quantity - filled),
                    OrderType.LIMIT,
                    limit,
                    "iceberg",
                )
            return
        if not due:
            return
        for child in open_children:  # a slice that did not fill in its time: cancel, then market
            self._executor.cancel(child.client_id)
        children = self._children(client_id)
        filled = sum(c.filled_quantity for c in children)
        leftover = sum(
            c.quantity - c.filled_quantity
            for c in children
            if c.client_id in {o.client_id for o in open_children}
        )
        if leftover > EPS:
            self._send(client_id, symbol, side, leftover, OrderType.MARKET, None, "twap fallback")
        with self._store.transaction() as records:
            algo = records.algo(client_id)
            assert algo is not None
            sent, total, interval = algo.slices_sent, algo.slices, algo.interval_s
        filled = sum(c.filled_quantity for c in self._children(client_id))
        if sent < total:
            size = (quantity - filled) / (total - sent)
            if size > EPS:
                self._send(
                    client_id, symbol, side, size, OrderType.LIMIT, self._touch(symbol, side), "twap slice"
                )
            self._set(client_id, slices_sent=sent + 1, next_at=now + timedelta(seconds=interval))
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
        self,
        parent: str,
        symbol: str,
        side: Side,
        quantity: float,
        kind: OrderType,
        price: float | None,
        role: str,
    ) -> None:
        spec = self._exchange.market_spec(symbol)  # slices go out on the market's step and tick
        quantity = floor_to_step(quantity, float(spec.step_size))
        if quantity < float(spec.min_quantity) - EPS:
            log_event(logger, "algo_slice_too_small", parent=parent, quantity=quantity)
            return
        if price is not None:
            price = spec.round_price(price, side, passive=True)
        plan = PlannedOrder(symbol, side, quantity, False, self._leverage, role, order_type=kind,
                            parent_client_id=parent, role=role.replace(" ", "_"))  # fmt: skip
        with self._store.transaction() as records:
            row = self._executor.pending_row(plan, None, None)
            row.limit_price = price
            records.add_order(row)
            client_id = row.client_id
        self._executor.submit(client_id, self._leverage)

    def _set(self, client_id: str, **values: Any) -> None:
        with self._store.transaction() as records:
            algo = records.algo(client_id)
            assert algo is not None
            for key, value in values.items():
                setattr(algo, key, value)
        if values.get("status") in ("DONE", "CANCELED"):
            log_event(
                logger, "algo_finished", algo=client_id, status=values["status"], reason=values.get("reason")
            )

    def cancel(self, client_id: str, reason: str = "cancelled by request") -> None:
        for child in self._children(client_id):
            if child.status in OPEN:
                self._executor.cancel(child.client_id)
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
            }  # fmt: skip
        children = self._children(client_id)
        filled = sum(c.filled_quantity for c in children)
        view.update(
            filled=filled,
            progress=filled / float(view["quantity"]),
            orders=[(c.client_id, c.role, c.status) for c in children],
        )
        return view

"""Stop-loss / take-profit brackets attached to filled entries, kept one-cancels-the-other.

When an entry fills and its decision carries a stop and/or a target, reduce-only STOP_MARKET and
TAKE_PROFIT orders for the filled quantity are committed (PENDING_SUBMIT, like every order) and sent.
Each engine loop ``maintain`` cancels the siblings of a child that filled, and every open child whose
entry's position is gone or has flipped. A leg on the wrong side of the fill price is not placed (it
would trigger at once); the reason is logged.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from agent.execution.orders import OrderExecutor, PlannedOrder
from shared.db import Database, OrderRow, PositionRow
from shared.logs import log_event
from shared.models import OrderStatus, OrderType, Side

logger = logging.getLogger(__name__)
OPEN = (OrderStatus.PENDING_SUBMIT.value, OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value)


class Brackets:
    def __init__(self, db: Database, executor: OrderExecutor) -> None:
        self._db = db
        self._executor = executor

    def attach(
        self, entry_client_id: str, stop_loss: float | None, take_profit: float | None, leverage: float
    ) -> list[str]:
        """Place the bracket of a filled entry; returns the children's client ids."""
        with self._db.session() as session:
            entry = session.scalar(select(OrderRow).where(OrderRow.client_id == entry_client_id))
            if entry is None or entry.status != OrderStatus.FILLED.value or entry.price is None:
                return []
            side, fill = Side(entry.side), entry.price
            position = session.get(PositionRow, entry.symbol)
            held = position.quantity if position else 0.0
            if held * side.sign <= 0:
                return []  # the entry did not leave a position on its side (it only reduced one)
            quantity = min(entry.filled_quantity, abs(held))  # a flip's closing part needs no bracket
            plans = []
            legs = (
                ("stop_loss", OrderType.STOP_MARKET, stop_loss),
                ("take_profit", OrderType.TAKE_PROFIT, take_profit),
            )
            for role, kind, trigger in legs:
                if trigger is None:
                    continue
                below = trigger < fill
                if (role == "stop_loss") != (below if side is Side.BUY else not below):
                    log_event(
                        logger, "bracket_leg_skipped", logging.WARNING, entry=entry_client_id, role=role,
                        trigger=trigger, fill=fill, reason="on the wrong side of the fill price",
                    )  # fmt: skip
                    continue
                reason = f"{role.replace('_', ' ')} of {entry_client_id}"
                plans.append(
                    PlannedOrder(
                        entry.symbol,
                        side.opposite(),
                        quantity,
                        True,
                        leverage,
                        reason,
                        order_type=kind,
                        trigger_price=trigger,
                        parent_client_id=entry_client_id,
                        role=role,
                    )
                )
            rows = [self._executor.pending_row(plan, entry.signal_id, entry.decision_id) for plan in plans]
            session.add_all(rows)
            client_ids = [row.client_id for row in rows]
        for client_id in client_ids:
            self._executor.submit(client_id, leverage)
        return client_ids

    def maintain(self) -> int:
        """One-cancels-the-other, and no child outlives its position. Returns how many were cancelled."""
        to_cancel: list[str] = []
        with self._db.session() as session:
            children = session.scalars(select(OrderRow).where(OrderRow.parent_client_id.is_not(None))).all()
            by_parent: dict[str, list[OrderRow]] = {}
            for child in children:
                by_parent.setdefault(str(child.parent_client_id), []).append(child)
            for parent_id, family in by_parent.items():
                parent = session.scalar(select(OrderRow).where(OrderRow.client_id == parent_id))
                position = session.get(PositionRow, family[0].symbol)
                held = position.quantity if position else 0.0
                gone = parent is None or held == 0 or (held > 0) != (parent.side == Side.BUY.value)
                triggered = any(c.filled_quantity > 0 for c in family)
                for child in family:
                    if child.status in OPEN[1:] and (gone or triggered) and child.filled_quantity == 0:
                        to_cancel.append(child.client_id)
        for client_id in to_cancel:
            self._executor.cancel(client_id)
        return len(to_cancel)

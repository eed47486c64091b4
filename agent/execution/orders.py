"""Order placement with the money-safety rules of DESIGN.md.

1. The order row (``PENDING_SUBMIT``, our client id) is committed *before* the exchange is called. An
   exchange that signs ahead (Bluefin Pro) signs it first and its order hash, signing time and signed expiry
   are committed with the row before the signed bytes are sent.
2. Placement is never retried: a ``Temporary`` or ``UnknownOutcome`` leaves the order ``PENDING_SUBMIT``
   and reconciliation looks it up by client id. An order the exchange does not know is, on an exchange that
   signs ahead, settled as never placed when it was never signed (the agent stopped before sending it) or
   once it can no longer exist there (``settled_unseen``); on any other exchange it becomes ``LOST`` after
   ``NOT_FOUND_LIMIT`` look-ups and a person looks.
3. Fills are deduplicated by trade id, so applying the same result twice changes nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from agent.execution.booking import book_fill
from agent.execution.lifecycle import ALLOWED, NOT_FOUND_LIMIT, transition
from agent.journal.events import Journal
from agent.journal.store import Records, Store
from shared.db import FillRow, OrderRow, PositionRow
from shared.errors import Rejected, Temporary, UnknownOutcome
from shared.exchange.base import Exchange, OrderRef
from shared.logs import log_event
from shared.models import Fill, OrderRequest, OrderResult, OrderStatus, OrderType, Side
from shared.serialize import order_dict, position_dict, trade_dict

logger = logging.getLogger(__name__)
# an order signed ahead that the exchange never showed us is settled as never placed once its signed expiry
# has passed (plus this margin for clocks), or this long after it was signed for one that rests (its expiry
# is weeks away: a resting order that reached the exchange shows in its open orders within seconds)
EXPIRY_MARGIN = timedelta(seconds=5)
UNSEEN_RESTING_AFTER = timedelta(minutes=2)
FINISHED = (OrderStatus.FILLED.value, OrderStatus.CANCELED.value, OrderStatus.REJECTED.value)


def new_client_id() -> str:
    return f"bfa-{uuid.uuid4().hex}"


def order_ref(row: OrderRow) -> OrderRef:
    """What an exchange needs to find one of our orders again."""
    return OrderRef(
        client_id=row.client_id, symbol=row.symbol, side=Side(row.side), quantity=row.quantity,
        exchange_id=row.exchange_id, acknowledged=row.status != OrderStatus.PENDING_SUBMIT.value,
        since=row.signed_at or row.created_at, has_trigger=OrderType(row.order_type).has_trigger,
    )  # fmt: skip


def settled_unseen(row: OrderRow, now: datetime) -> str | None:
    """Why a PENDING_SUBMIT order the exchange does not know can be settled as never placed (None: not yet).
    Only for an exchange that signs ahead: what was sent is exactly what was recorded."""
    if row.signed_at is None or row.expires_at is None:
        return "never sent: the agent stopped before it signed the order"
    if now > row.expires_at + EXPIRY_MARGIN:
        return "never reached the exchange: its signed expiry has passed and the exchange does not know it"
    if now > row.signed_at + UNSEEN_RESTING_AFTER and row.not_found >= NOT_FOUND_LIMIT:
        return (
            f"never reached the exchange: not among its orders or trades in {row.not_found} look-ups "
            f"{UNSEEN_RESTING_AFTER.seconds} s after it was signed"
        )
    return None


@dataclass(frozen=True)
class PlannedOrder:
    symbol: str
    side: Side
    quantity: float
    reduce_only: bool
    leverage: float
    reason: str  # why: becomes the exit reason of any trade it closes
    order_type: OrderType = OrderType.MARKET
    trigger_price: float | None = None
    parent_client_id: str | None = None
    role: str = "entry"
    exit_kind: str = ""  # what a trade this order closes is recorded as (stop_loss, time_exit, ...)
    limit_price: float | None = None


@dataclass(frozen=True)
class Booking:
    """What one order's change did to its market's books (the latest, per market): the position after it."""

    revision: int  # the market's revision once this change was committed
    client_id: str
    role: str  # the order's role (entry, close, stop_loss, ...)
    position: tuple[float, float] | None  # (quantity, entry price) after its fills; None: nothing filled
    plan_dropped: bool  # the position went flat or flipped, and its plan was deleted


class OrderExecutor:
    def __init__(self, store: Store, exchange: Exchange, journal: Journal) -> None:
        self._store = store
        self._exchange = exchange
        self._journal = journal
        self.revision: dict[str, int] = {}  # per symbol: bumped whenever one of its orders or fills changes
        self.closed_trades: list[tuple[str, float]] = []  # (signal source, pnl) of each trade booked here
        self.bookings: dict[str, Booking] = {}  # per symbol: the latest change folded in by apply_result

    def _touched(self, symbol: str) -> None:
        self.revision[symbol] = self.revision.get(symbol, 0) + 1

    def pending_row(self, plan: PlannedOrder, signal_id: int | None, decision_id: int | None) -> OrderRow:
        """The row to commit before calling the exchange (caller adds it to its transaction)."""
        return OrderRow(
            client_id=new_client_id(),
            signal_id=signal_id,
            decision_id=decision_id,
            symbol=plan.symbol,
            side=plan.side.value,
            order_type=plan.order_type.value,
            trigger_price=plan.trigger_price,
            parent_client_id=plan.parent_client_id,
            role=plan.role,
            exit_kind=plan.exit_kind,
            limit_price=plan.limit_price,
            quantity=plan.quantity,
            reduce_only=plan.reduce_only,
            status=OrderStatus.PENDING_SUBMIT.value,
            reason=plan.reason,
        )

    def submit(self, client_id: str, leverage: float, committed: OrderRow | None = None) -> None:
        """Send a committed PENDING_SUBMIT order to the exchange, once. ``committed``: the row as the caller
        has just committed it, under the lock that orders go out under (saves reading it back)."""
        row = committed
        if row is None:
            with self._store.transaction() as records:
                row = records.order(client_id)
        if row is None or row.client_id != client_id or row.status != OrderStatus.PENDING_SUBMIT.value:
            return
        request = OrderRequest(
            client_id=row.client_id, symbol=row.symbol, side=Side(row.side), quantity=row.quantity,
            order_type=OrderType(row.order_type), reduce_only=row.reduce_only, leverage=leverage,
            trigger_price=row.trigger_price, price=row.limit_price,
        )  # fmt: skip
        if self._exchange.signs_ahead:
            if not self._sign_ahead(row, request):
                return
            committed = None  # the row changed since its caller committed it: apply_result reads it back
        try:
            result = self._exchange.place_order(request)
        except Rejected as exc:
            self._finish_without_fill(client_id, OrderStatus.REJECTED, str(exc))
            return
        except (Temporary, UnknownOutcome) as exc:
            log_event(logger, "order_outcome_unknown", logging.WARNING, client_id=client_id, error=str(exc))
            return
        self.apply_result(result, committed)

    def _sign_ahead(self, row: OrderRow, request: OrderRequest) -> bool:
        """Sign the order and commit what identifies it before it is sent. False: it will not be sent (the
        exchange refused it, or it could not be signed now: reconciliation settles it as never sent)."""
        try:
            prepared = self._exchange.prepare_order(request)
        except Rejected as exc:
            self._finish_without_fill(row.client_id, OrderStatus.REJECTED, str(exc))
            return False
        except Temporary as exc:
            log_event(logger, "order_not_signed", logging.WARNING, client_id=row.client_id, error=str(exc))
            return False
        if prepared is None:
            return True
        with self._store.transaction() as records:
            stored = records.order(row.client_id)
            assert stored is not None
            stored.exchange_id = prepared.exchange_id
            stored.signed_at, stored.expires_at = prepared.signed_at, prepared.expires_at
        return True

    def reconcile_pending(self, only: set[str] | None = None) -> int:
        """Look every unresolved order (PENDING_SUBMIT, OPEN, PARTIALLY_FILLED, LOST) up by client id and
        fold what the exchange says into our books. An order the exchange does not know NOT_FOUND_LIMIT
        times in a row becomes LOST and raises an alert; it is never resent. With ``only`` (an exchange that
        says which orders changed), the others are not looked up, except those still PENDING_SUBMIT. Returns
        how many were looked up. Temporary errors propagate (reads are retried by the caller's next loop)."""
        unresolved = (
            OrderStatus.PENDING_SUBMIT.value, OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value,
            OrderStatus.LOST.value,
        )  # fmt: skip
        with self._store.transaction() as records:
            refs = [
                order_ref(o) for o in records.orders(unresolved)
                if only is None or o.client_id in only or o.status == OrderStatus.PENDING_SUBMIT.value
            ]  # fmt: skip
            # an order we had finished that the exchange says changed: a late report (fills after a cancel)
            looked = {ref.client_id for ref in refs}
            for client_id in sorted((only or set()) - looked):
                row = records.order(client_id)
                if row is not None and row.status in FINISHED:
                    refs.append(order_ref(row))
        for ref in refs:
            result = self._exchange.get_order(ref.client_id, ref)
            if result is None:
                self._not_found(ref.client_id)
            else:
                self.apply_result(result)
        return len(refs)

    def _not_found(self, client_id: str) -> None:
        batch = self._journal.pending()
        with self._store.transaction() as records:
            row = records.order(client_id)
            if row is None or row.status == OrderStatus.LOST.value:
                return
            if self._exchange.signs_ahead and row.status == OrderStatus.PENDING_SUBMIT.value:
                row.not_found += 1
                why = settled_unseen(row, datetime.now(UTC))
                if why is None:
                    return  # it may still reach the exchange: the market stays blocked meanwhile
                row.status, row.reason = transition(row.status, OrderStatus.CANCELED).value, why
                event = "order_never_placed"
            else:
                row.not_found += 1
                if row.not_found < NOT_FOUND_LIMIT:
                    return
                row.status = transition(row.status, OrderStatus.LOST)
                row.reason = f"not found on the exchange {row.not_found} times; not resent, check it by hand"
                event = "order_lost"
            self._touched(row.symbol)
            records.flush()
            batch.record(records, "order", order_dict(row))
        batch.flush()
        if event == "order_lost":
            log_event(logger, event, logging.ERROR, client_id=client_id, alert=True)
        else:
            log_event(logger, event, logging.WARNING, client_id=client_id, reason=row.reason)

    @staticmethod
    def _increment(records: Records, fill: Fill) -> Fill | None:
        """A cumulative fill (the order's whole filled quantity so far, as our Bluefin adapter reports it)
        becomes the part not booked yet; an individual fill is booked as it is."""
        if not fill.cumulative:
            return fill
        previous = records.fills(fill.client_id)
        done = sum(f.quantity for f in previous)
        if fill.quantity <= done + 1e-12:
            return None
        notional = fill.quantity * fill.price - sum(f.quantity * f.price for f in previous)
        quantity = fill.quantity - done
        fee = max(fill.fee - sum(f.fee for f in previous), 0.0)
        return replace(fill, quantity=quantity, price=notional / quantity, fee=fee, cumulative=False)

    def cancel(self, client_id: str) -> None:
        """Cancel an open order (cancels may be retried: a second cancel of the same order is harmless).
        If the exchange says it is no longer open, its final state is read and folded in instead."""
        with self._store.transaction() as records:
            row = records.order(client_id)
            ref = order_ref(row) if row is not None else None
        for attempt in range(3):
            try:
                self.apply_result(self._exchange.cancel_order(client_id, ref))
                return
            except Rejected:
                result = self._exchange.get_order(client_id, ref)
                if result is not None:
                    self.apply_result(result)
                return
            except Temporary as exc:
                log_event(
                    logger,
                    "cancel_retry",
                    logging.WARNING,
                    client_id=client_id,
                    attempt=attempt,
                    error=str(exc),
                )
                time.sleep(0.2 * 2**attempt)
        log_event(logger, "cancel_failed", logging.ERROR, client_id=client_id, alert=True)

    def _finish_without_fill(self, client_id: str, status: OrderStatus, reason: str) -> None:
        batch = self._journal.pending()
        with self._store.transaction() as records:
            row = records.order(client_id)
            if row is None or OrderStatus(row.status).is_final:
                return
            row.status, row.reason = transition(row.status, status).value, reason
            self._touched(row.symbol)
            records.flush()
            batch.record(records, "order", order_dict(row))
        batch.flush()
        log_event(logger, "order_finished_unfilled", client_id=client_id, status=status.value, reason=reason)

    def apply_result(self, result: OrderResult, committed: OrderRow | None = None) -> None:
        """Fold an exchange result into orders, fills, positions and trades (idempotent by trade id).
        ``committed``: the order's row as its caller committed it, unchanged since (under the lock)."""
        batch = self._journal.pending()
        closed: list[tuple[str, float]] = []
        position: PositionRow | None = None
        plan_dropped = False
        with self._store.transaction() as records:
            if committed is not None and committed.client_id == result.client_id:
                row: OrderRow | None = records.committed(committed)
            else:
                row = records.order(result.client_id)
            if row is None:
                log_event(logger, "result_for_unknown_order", logging.ERROR, client_id=result.client_id)
                return
            for reported in result.fills:
                if records.fill_booked(reported.trade_id):
                    continue
                fill = self._increment(records, reported)
                if fill is None:
                    continue
                records.add_fill(
                    FillRow(
                        trade_id=fill.trade_id, client_id=fill.client_id, symbol=fill.symbol,
                        side=fill.side.value, quantity=fill.quantity, price=fill.price, fee=fill.fee,
                        time=fill.time,
                    )
                )  # fmt: skip
                position, trade, dropped = book_fill(records, fill, row)
                plan_dropped = plan_dropped or dropped
                log_event(logger, "fill_booked", symbol=fill.symbol, side=fill.side.value, qty=fill.quantity,
                          price=fill.price, role=row.role, exit_kind=row.exit_kind)  # fmt: skip
                records.flush()
                batch.record(records, "position", position_dict(position, fill.price))
                if trade is not None:
                    batch.record(records, "trade", trade_dict(trade))
                    closed.append((trade.signal_source, trade.pnl))
            changed = row.status != result.status.value or row.filled_quantity != result.filled_quantity
            if row.status in FINISHED and result.status not in ALLOWED[OrderStatus(row.status)]:
                # a late report of an order we had finished: its fills (if any) are booked above, its
                # status stays as it was (nothing else about it can change our exposure)
                level = logging.ERROR if result.fills else logging.WARNING
                log_event(logger, "late_report_of_finished_order", level, client_id=row.client_id,
                          status=row.status, reported=result.status.value, filled=result.filled_quantity,
                          alert=bool(result.fills))  # fmt: skip
            else:
                row.status = transition(row.status, result.status).value
            row.not_found = 0
            row.exchange_id = result.exchange_id
            row.filled_quantity = result.filled_quantity
            row.price = result.average_price
            if result.reason:
                row.reason = result.reason
            booked = None
            if changed:
                self._touched(row.symbol)
                records.flush()
                batch.record(records, "order", order_dict(row))
                after = (position.quantity, position.entry_price) if position is not None else None
                booked = Booking(
                    self.revision[row.symbol], row.client_id, row.role or "", after, plan_dropped
                )
        self.closed_trades.extend(closed)  # committed
        if booked is not None:
            self.bookings[row.symbol] = booked
        if not changed:
            return  # nothing new (a routine look-up): no event, no revision
        batch.flush()
        log_event(
            logger, "order_result", client_id=result.client_id, status=result.status.value,
            filled=result.filled_quantity, price=result.average_price,
        )  # fmt: skip

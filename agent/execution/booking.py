"""Our own books: fold a fill into the position table and record the trade of each position.

One trade per position, from open to flat: a partial take-profit (or any other partial exit) is a leg of its
position's trade, not a trade of its own. The trade books everything that moved the account while the
position was open, so that the sum of trade PnL is the change of equity (DESIGN.md):

    pnl = price PnL of its exits - the fees of every fill (entries and exits) + funding - forfeited margin

``forfeited`` is what a liquidation gave to the insurance fund on top of the price PnL at the liquidation
price (the fill reports it). Funding is added to the open position as it is settled
(``agent.execution.funding``) and moves to the trade when the position goes flat. Each fill of the position
is kept in the trade's ``legs`` (time, entry or exit kind, side, quantity, price, fee, price PnL, forfeited
margin: no exchange or client ids, so that a backtest's trades are the same run after run), so per-fill
figures stay available (the fills table has each fill by id).

A closed trade carries why it closed (the final order's ``exit_kind``, e.g. ``stop_loss``,
``trailing_stop``, ``close_signal``, ``liquidation``) and its entry's context from the position plan (signal
source, analyst, market regime, initial risk = the plan's risk per unit x the position's quantity), so that
its R multiple feeds the analysts' track record.
"""

from __future__ import annotations

from typing import Any

from agent.journal.store import Records
from shared.accounting import EPSILON, apply_fill
from shared.db import OrderRow, PositionPlanRow, PositionRow, TradeRow
from shared.models import Fill, Position

DEFAULT_EXIT = {"entry": "flip", "close": "close_signal"}
ENTRY = "entry"  # the kind of a leg that opened or added to the position


def exit_kind_of(order: OrderRow) -> str:
    return order.exit_kind or DEFAULT_EXIT.get(order.role, order.role or "signal")


def _leg(
    fill: Fill, order: OrderRow, kind: str, quantity: float, fee: float, pnl: float, forfeited: float
) -> dict[str, Any]:
    return {
        "time": fill.time.isoformat(), "role": order.role or "", "kind": kind, "side": fill.side.value,
        "quantity": quantity, "price": fill.price, "fee": fee, "pnl": pnl, "forfeited": forfeited,
    }  # fmt: skip


def trade_pnl(legs: list[dict[str, Any]], funding: float) -> tuple[float, float, float]:
    """(pnl, fees, forfeited) of a position's legs and its funding (see the module docstring)."""
    price_pnl = sum(leg["pnl"] for leg in legs)
    fees = sum(leg["fee"] for leg in legs)
    forfeited = sum(leg["forfeited"] for leg in legs)
    return price_pnl - fees + funding - forfeited, fees, forfeited


def _close_trade(
    row: PositionRow, before: Position, legs: list[dict[str, Any]], fill: Fill, order: OrderRow,
    plan: PositionPlanRow | None,
) -> TradeRow:  # fmt: skip
    entries = [leg for leg in legs if leg["kind"] == ENTRY]
    exits = [leg for leg in legs if leg["kind"] != ENTRY]
    quantity = sum(leg["quantity"] for leg in entries) or abs(before.quantity)
    exit_quantity = sum(leg["quantity"] for leg in exits)
    exit_price = sum(leg["quantity"] * leg["price"] for leg in exits) / exit_quantity
    funding = row.funding or 0.0
    pnl, fees, forfeited = trade_pnl(legs, funding)
    risk = plan.risk_per_unit * quantity if plan is not None and plan.risk_per_unit else None
    return TradeRow(
        symbol=fill.symbol, side="BUY" if before.quantity > 0 else "SELL", quantity=quantity,
        entry_price=before.entry_price, exit_price=exit_price, pnl=pnl, fees=fees, funding=funding,
        forfeited=forfeited, legs=legs, opened_at=row.opened_at or fill.time, closed_at=fill.time,
        exit_reason=exit_kind_of(order), exit_detail=order.reason or "", close_client_id=order.client_id,
        signal_source=plan.signal_source if plan else "", analyst=plan.analyst if plan else "",
        regime=plan.regime if plan else "", initial_risk=risk, r_multiple=pnl / risk if risk else None,
    )  # fmt: skip


def book_fill(records: Records, fill: Fill, order: OrderRow) -> tuple[PositionRow, TradeRow | None, bool]:
    """Update the symbol's position with ``fill``; return it, the trade closed by it (the position went flat
    or flipped), if any, and whether the position's plan was dropped.

    ``PositionRow.fees`` stays the opening fees of the open quantity; the trade's ``fees`` are every fee of
    its legs. A fill that flips the position closes the old trade with the part that closes (and its share
    of the fee) and opens the next position with the rest. A position that goes flat or flips loses its plan
    (the position manager makes a new one for whatever opens next).
    """
    row = records.position(fill.symbol)
    if row is None:
        row = PositionRow(
            symbol=fill.symbol,
            quantity=0.0,
            entry_price=0.0,
            realized_pnl=0.0,
            fees=0.0,
            funding=0.0,
            legs=[],
        )
        records.add_position(row)
    before = Position(row.symbol, row.quantity, row.entry_price, row.realized_pnl)
    effect = apply_fill(before, fill.side, fill.quantity, fill.price)
    plan = records.plan(fill.symbol)
    legs = list(row.legs or [])
    if not legs and before.quantity != 0:  # a position opened before trades kept their legs: its entry as one
        opened_at = row.opened_at or fill.time
        legs = [{
            "time": opened_at.isoformat(), "role": "entry", "kind": ENTRY,
            "side": "BUY" if before.quantity > 0 else "SELL", "quantity": abs(before.quantity),
            "price": before.entry_price, "fee": row.fees, "pnl": 0.0, "forfeited": 0.0,
        }]  # fmt: skip
    closing = effect.closed_quantity / fill.quantity
    close_fee = fill.fee * closing
    opening_fee = fill.fee - close_fee
    open_fee_share = 0.0
    trade = None
    was_flat_or_flipped = before.quantity == 0 or (effect.position.quantity * before.quantity < 0)
    if effect.closed_quantity > 0:
        open_fee_share = row.fees * effect.closed_quantity / abs(before.quantity)
        legs.append(
            _leg(fill, order, exit_kind_of(order), effect.closed_quantity, close_fee, effect.realized_pnl,
                 fill.forfeited)
        )  # fmt: skip
        if effect.position.quantity == 0 or was_flat_or_flipped:
            trade = _close_trade(row, before, legs, fill, order, plan)
            records.add_trade(trade)
            legs, row.funding = [], 0.0
    opened = fill.quantity - effect.closed_quantity
    if opened > EPSILON:
        legs.append(_leg(fill, order, ENTRY, opened, opening_fee, 0.0, 0.0))
    row.legs = legs  # a new list: a database row sees the change
    row.fees = row.fees - open_fee_share + (opening_fee if opened > EPSILON else 0.0)
    row.quantity = effect.position.quantity
    row.entry_price = effect.position.entry_price
    row.realized_pnl = effect.position.realized_pnl
    if row.quantity == 0:
        row.opened_at = None
        row.fees = 0.0
    elif was_flat_or_flipped:
        row.opened_at = fill.time
    dropped = plan is not None and (row.quantity == 0 or row.quantity * before.quantity < 0)
    if dropped:
        records.delete_plan(fill.symbol)
    return row, trade, dropped

"""Our own books: fold a fill into the position table and record the trade it closes.

A closed trade carries why it closed (the closing order's ``exit_kind``, e.g. ``stop_loss``,
``trailing_stop``, ``close_signal``) and its entry's context from the position plan (signal source,
analyst, market regime, initial risk), so that its R multiple feeds the analysts' track record.
"""

from __future__ import annotations

from agent.store import Records
from shared.accounting import apply_fill
from shared.db import OrderRow, PositionRow, TradeRow
from shared.models import Fill, Position

DEFAULT_EXIT = {"entry": "flip", "close": "close_signal"}


def exit_kind_of(order: OrderRow) -> str:
    return order.exit_kind or DEFAULT_EXIT.get(order.role, order.role or "signal")


def book_fill(records: Records, fill: Fill, order: OrderRow) -> tuple[PositionRow, TradeRow | None, bool]:
    """Update the symbol's position with ``fill``; return it, the trade closed by it, if any, and whether the
    position's plan was dropped.

    Fees: opening fees accumulate on the position and move to the trade in proportion to what it closes,
    so a trade's ``pnl`` is net of the fees of both its legs. A position that goes flat or flips loses its
    plan (the position manager makes a new one for whatever opens next).
    """
    row = records.position(fill.symbol)
    if row is None:
        row = PositionRow(symbol=fill.symbol, quantity=0.0, entry_price=0.0, realized_pnl=0.0, fees=0.0)
        records.add_position(row)
    before = Position(row.symbol, row.quantity, row.entry_price, row.realized_pnl)
    effect = apply_fill(before, fill.side, fill.quantity, fill.price)
    trade = None
    open_fee_share = 0.0
    plan = records.plan(fill.symbol)
    if effect.closed_quantity > 0:
        open_fee_share = row.fees * effect.closed_quantity / abs(before.quantity)
        close_fee = fill.fee * effect.closed_quantity / fill.quantity
        fees = open_fee_share + close_fee
        pnl = effect.realized_pnl - fees
        risk = (
            plan.risk_per_unit * effect.closed_quantity if plan is not None and plan.risk_per_unit else None
        )
        trade = TradeRow(
            symbol=fill.symbol, side="BUY" if before.quantity > 0 else "SELL",
            quantity=effect.closed_quantity, entry_price=before.entry_price, exit_price=fill.price,
            pnl=pnl, fees=fees, opened_at=row.opened_at or fill.time, closed_at=fill.time,
            exit_reason=exit_kind_of(order), exit_detail=order.reason or "", close_client_id=order.client_id,
            signal_source=plan.signal_source if plan else "", analyst=plan.analyst if plan else "",
            regime=plan.regime if plan else "", initial_risk=risk,
            r_multiple=pnl / risk if risk else None,
        )  # fmt: skip
        records.add_trade(trade)
    opening_fee = fill.fee * (1 - effect.closed_quantity / fill.quantity)
    row.fees = row.fees - open_fee_share + opening_fee
    was_flat_or_flipped = before.quantity == 0 or (effect.position.quantity * before.quantity < 0)
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

"""Our own books: fold a fill into the position table and record the trade it closes."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shared.accounting import apply_fill
from shared.db import PositionRow, TradeRow
from shared.models import Fill, Position


def book_fill(
    session: Session, fill: Fill, exit_reason: str, client_id: str
) -> tuple[PositionRow, TradeRow | None]:
    """Update the symbol's position with ``fill``; return it and the trade closed by it, if any.

    Fees: opening fees accumulate on the position and move to the trade in proportion to what it closes,
    so a trade's ``pnl`` is net of the fees of both its legs.
    """
    row = session.get(PositionRow, fill.symbol)
    if row is None:
        row = PositionRow(symbol=fill.symbol, quantity=0.0, entry_price=0.0, realized_pnl=0.0, fees=0.0)
        session.add(row)
    before = Position(row.symbol, row.quantity, row.entry_price, row.realized_pnl)
    effect = apply_fill(before, fill.side, fill.quantity, fill.price)
    trade = None
    open_fee_share = 0.0
    if effect.closed_quantity > 0:
        open_fee_share = row.fees * effect.closed_quantity / abs(before.quantity)
        close_fee = fill.fee * effect.closed_quantity / fill.quantity
        fees = open_fee_share + close_fee
        trade = TradeRow(
            symbol=fill.symbol,
            side="BUY" if before.quantity > 0 else "SELL",
            quantity=effect.closed_quantity,
            entry_price=before.entry_price,
            exit_price=fill.price,
            pnl=effect.realized_pnl - fees,
            fees=fees,
            opened_at=row.opened_at or fill.time,
            closed_at=fill.time,
            exit_reason=exit_reason,
            close_client_id=client_id,
        )
        session.add(trade)
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
    return row, trade

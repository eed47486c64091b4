"""What a freshly connected dashboard needs to show before the next event arrives (read-only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shared.db import Database, DecisionRow, OrderRow, PositionRow, SignalRow, TradeRow
from shared.serialize import decision_dict, order_dict, position_dict, signal_dict, trade_dict

ROWS = 50


def read_snapshot(db: Database) -> dict[str, Any]:
    """The latest signals (with their decisions), orders and trades, and the open positions, in the shapes of
    the live events."""
    with db.session() as session:
        signals = session.execute(
            select(SignalRow, DecisionRow)
            .outerjoin(DecisionRow, DecisionRow.signal_id == SignalRow.id)
            .order_by(SignalRow.id.desc())
            .limit(ROWS)
        ).all()
        orders = session.scalars(select(OrderRow).order_by(OrderRow.id.desc()).limit(ROWS))
        positions = session.scalars(select(PositionRow).where(PositionRow.quantity != 0))
        trades = session.scalars(select(TradeRow).order_by(TradeRow.id.desc()).limit(ROWS))
        return {
            "signals": [signal_dict(s, d) for s, d in signals],
            "decisions": [decision_dict(d) for _, d in signals if d is not None],
            "orders": [order_dict(o) for o in orders],
            "positions": [position_dict(p, None) for p in positions],
            "trades": [trade_dict(t) for t in trades],
        }

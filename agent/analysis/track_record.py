"""The feedback loop: how an analyst's past decisions worked out, from the journal's closed trades.

For the analyst about to decide: trade count, win rate, average R multiple (the mean of the positions' R)
and total R (total PnL over total initial risk) overall, by signal source and by market regime (the 1h trend
when the position was opened), plus its most recent outcomes. It goes into the analyst's prompt, so a model
can weigh a source or a regime by what it has actually earned. A trade is a position from open to flat (a
partial take-profit is one of its legs), its PnL net of fees, funding and any margin a liquidation forfeited
(``agent.execution.booking``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from shared.db import Database, TradeRow

WINDOW = 200  # the most recent closed trades considered
RECENT = 5


@dataclass(frozen=True)
class Outcome:
    trades: int
    win_rate: float
    average_r: float | None
    pnl: float
    total_r: float | None = None  # total pnl / total initial risk of the trades with one

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "trades": self.trades,
            "win_rate": round(self.win_rate, 3),
            "average_r": None if self.average_r is None else round(self.average_r, 3),
            "pnl": round(self.pnl, 2),
        }
        if self.total_r is not None:  # only trades with a known initial risk have one
            shown["total_r"] = round(self.total_r, 3)
        return shown


def outcome(rows: Iterable[TradeRow]) -> Outcome:
    trades = list(rows)
    with_r = [t.r_multiple for t in trades if t.r_multiple is not None]
    risked = [t for t in trades if t.initial_risk]
    total_risk = sum(t.initial_risk or 0.0 for t in risked)
    return Outcome(
        trades=len(trades),
        win_rate=sum(1 for t in trades if t.pnl > 0) / len(trades) if trades else 0.0,
        average_r=sum(with_r) / len(with_r) if with_r else None,
        pnl=sum(t.pnl for t in trades),
        total_r=sum(t.pnl for t in risked) / total_risk if total_risk > 0 else None,
    )


def _grouped(trades: list[TradeRow], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[TradeRow]] = {}
    for trade in trades:
        groups.setdefault(getattr(trade, key) or "unknown", []).append(trade)
    return {name: outcome(rows).as_dict() for name, rows in sorted(groups.items())}


def track_record(db: Database, analyst: str, window: int = WINDOW) -> dict[str, Any]:
    """The analyst's record over its last ``window`` closed trades (oldest first within the window)."""
    with db.session() as session:
        rows = list(
            session.scalars(
                select(TradeRow).where(TradeRow.analyst == analyst).order_by(TradeRow.id.desc()).limit(window)
            )
        )
    rows.reverse()
    return {
        "analyst": analyst,
        "overall": outcome(rows).as_dict(),
        "by_signal_source": _grouped(rows, "signal_source"),
        "by_regime": _grouped(rows, "regime"),
        "recent": [
            {
                "symbol": t.symbol,
                "side": "long" if t.side == "BUY" else "short",
                "exit": t.exit_reason,
                "r": None if t.r_multiple is None else round(t.r_multiple, 2),
                "source": t.signal_source,
            }
            for t in rows[-RECENT:]
        ],
    }

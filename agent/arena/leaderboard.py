"""The arena's leaderboard: per analyst, what its shadow book made, with the metrics of a backtest, its LLM
cost (the ``ai_calls`` it made) and what is left net of that cost.

A row: analyst, pnl (closed shadow trades plus the open ones marked at the given prices, each net of both
taker fees), return_pct and max_drawdown_pct (of an equity curve rebuilt from the trades at
``starting_equity``), sharpe (daily), win_rate, trades, llm_cost_usd, pnl_net_of_llm_cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.analytics.performance import TradeRecord, compute_metrics, equity_from_trades
from agent.arena.arena import BASELINE, position_from_row
from agent.arena.book import unrealized
from shared.db import AiCallRow, Database, ShadowTradeRow


def llm_costs(db: Database) -> dict[str, float]:
    """USD spent on AI calls, by provider (an analyst's name)."""
    with db.session() as session:
        rows = session.execute(
            select(AiCallRow.provider, func.coalesce(func.sum(AiCallRow.cost_usd), 0.0)).group_by(
                AiCallRow.provider
            )
        ).all()
    return {str(provider): float(cost) for provider, cost in rows}


def shadow_trades(
    db: Database, analyst: str | None = None, signal_id: int | None = None
) -> list[dict[str, Any]]:
    """The shadow trades (oldest first), of one analyst or opened or closed by one signal when asked."""
    with db.session() as session:
        return shadow_trades_in(session, analyst, signal_id)


def shadow_trades_in(
    session: Session, analyst: str | None = None, signal_id: int | None = None
) -> list[dict[str, Any]]:
    """``shadow_trades`` read in ``session`` (a decision's story reads them with the rest of it)."""
    query = select(ShadowTradeRow).order_by(ShadowTradeRow.id)
    if analyst is not None:
        query = query.where(ShadowTradeRow.analyst == analyst)
    if signal_id is not None:
        query = query.where(
            (ShadowTradeRow.signal_id == signal_id) | (ShadowTradeRow.close_signal_id == signal_id)
        )
    return [_trade_dict(r) for r in session.scalars(query)]


def _trade_dict(r: ShadowTradeRow) -> dict[str, Any]:
    return {
        "id": r.id, "analyst": r.analyst, "signal_id": r.signal_id, "symbol": r.symbol, "side": r.side,
        "quantity": r.quantity, "entry_price": r.entry_price, "opened_at": _utc(r.opened_at).isoformat(),
        "stop_price": r.stop_price, "take_profit": r.take_profit, "initial_risk": r.initial_risk,
        "status": r.status, "exit_price": r.exit_price,
        "closed_at": _utc(r.closed_at).isoformat() if r.closed_at else None, "exit_reason": r.exit_reason,
        "close_signal_id": r.close_signal_id, "fees": r.fees, "pnl": r.pnl,
        "taker_fee": r.taker_fee, "slippage_bps": r.slippage_bps,
    }  # fmt: skip


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def records(db: Database, analyst: str, marks: Mapping[str, float], now: datetime) -> list[TradeRecord]:
    """The analyst's shadow trades as trade records; an open one marked at ``marks`` (closing there now),
    left out when its market has no mark."""
    with db.session() as session:
        rows = list(session.scalars(select(ShadowTradeRow).where(ShadowTradeRow.analyst == analyst)
                                    .order_by(ShadowTradeRow.id)))  # fmt: skip
    out: list[TradeRecord] = []
    for r in rows:
        if r.status == "CLOSED" and r.exit_price is not None and r.closed_at is not None:
            exit_price, closed, pnl, reason = r.exit_price, _utc(r.closed_at), r.pnl, r.exit_reason
        elif r.symbol in marks:
            exit_price, closed, reason = marks[r.symbol], max(now, _utc(r.opened_at)), "open"
            pnl = unrealized(position_from_row(r), exit_price)
        else:
            continue
        out.append(
            TradeRecord(
                symbol=r.symbol,
                side=r.side,
                quantity=r.quantity,
                entry_price=r.entry_price,
                exit_price=exit_price,
                pnl=pnl,
                fees=r.fees,
                opened_at=_utc(r.opened_at),
                closed_at=closed,
                exit_reason=reason,
                analyst=analyst,
                r_multiple=pnl / r.initial_risk if r.initial_risk else None,
                initial_risk=r.initial_risk,
            )
        )
    out.sort(key=lambda t: (t.closed_at, t.opened_at))
    return out


def leaderboard_row(
    analyst: str, trades: Sequence[TradeRecord], starting_equity: float, llm_cost_usd: float
) -> dict[str, Any]:
    """One analyst's row (see the module docstring)."""
    equity = equity_from_trades(trades, starting_equity)
    metrics = compute_metrics(equity, trades, starting_equity=starting_equity)
    pnl = sum(t.pnl for t in trades)
    return {
        "analyst": analyst,
        "pnl": pnl,
        "return_pct": pnl / starting_equity * 100 if starting_equity else None,
        "max_drawdown_pct": metrics.max_drawdown * 100,
        "sharpe": metrics.sharpe,
        "win_rate": metrics.win_rate,
        "trades": len(trades),
        "llm_cost_usd": llm_cost_usd,
        "pnl_net_of_llm_cost": pnl - llm_cost_usd,
    }


def arena_report(
    db: Database, names: Sequence[str], starting_equity: float, pnl: float, marks: Mapping[str, float],
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """{"baseline": the follow row, "arena": the other analysts' rows (best pnl net of LLM cost first),
    "llm_cost_usd": every AI call's cost, "pnl_net_of_llm_cost": the real book's ``pnl`` less that}."""
    costs = llm_costs(db)
    rows = {
        name: leaderboard_row(name, records(db, name, marks, now), starting_equity, costs.get(name, 0.0))
        for name in dict.fromkeys([BASELINE, *names])
    }
    baseline = rows.pop(BASELINE)
    arena = sorted(rows.values(), key=lambda r: (-r["pnl_net_of_llm_cost"], r["analyst"]))
    total = sum(costs.values())
    return {"baseline": baseline, "arena": arena, "llm_cost_usd": total, "pnl_net_of_llm_cost": pnl - total}

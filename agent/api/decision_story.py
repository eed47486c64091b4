"""A decision's whole story for ``GET /api/decisions/<id>``: the signal it answered (its alert and the
market snapshot the analyst saw), the orders it made (entry, stops, targets, exits) with their fills, the
trades they closed (the realised outcome and what it cost: fees and funding), and the shadow books' trades
opened or closed by its signal (``agent.arena``: what each shadow analyst did with the same signal, its
entry, exit, PnL and cost: both fees and the LLM cost of its calls on that signal)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.arena.leaderboard import shadow_trades_in
from shared.db import AiCallRow, DecisionRow, FillRow, OrderRow, SignalRow, TradeRow
from shared.serialize import fill_dict, order_dict, signal_dict, trade_dict


def decision_story(session: Session, row: DecisionRow) -> dict[str, Any]:
    signal = session.get(SignalRow, row.signal_id)
    orders = list(
        session.scalars(select(OrderRow).where(OrderRow.decision_id == row.id).order_by(OrderRow.id))
    )
    client_ids = [o.client_id for o in orders]
    fills = (
        list(session.scalars(select(FillRow).where(FillRow.client_id.in_(client_ids)).order_by(FillRow.id)))
        if client_ids
        else []
    )
    trades = (
        list(
            session.scalars(
                select(TradeRow).where(TradeRow.close_client_id.in_(client_ids)).order_by(TradeRow.id)
            )
        )
        if client_ids
        else []
    )
    fees = sum(f.fee for f in fills)
    outcome = {
        "trades": len(trades),
        "realised_pnl": sum(t.pnl for t in trades) if trades else None,
        "fees": fees,
        "funding": sum(t.funding for t in trades),
        "filled": sum(f.quantity for f in fills),
    }
    return {
        "signal": signal_dict(signal, row) if signal is not None else None,
        "alert": _alert(signal.raw) if signal is not None else None,
        # the prompt of each AI call, in the order of ``ai_calls``
        "prompts": [
            c.prompt
            for c in session.scalars(
                select(AiCallRow).where(AiCallRow.signal_key == signal.idempotency_key).order_by(AiCallRow.id)
            )
        ]
        if signal is not None
        else [],
        "orders": [order_dict(o) for o in orders],
        "fills": [fill_dict(f) for f in fills],
        "trades": [trade_dict(t) for t in trades],
        "outcome": outcome,
        "shadow": shadow_outcomes(session, signal) if signal is not None else [],
    }


def shadow_outcomes(session: Session, signal: SignalRow) -> list[dict[str, Any]]:
    """The shadow trades opened (``role`` "opened") or closed ("closed") by ``signal``, each with
    ``llm_cost_usd``: what its analyst's AI calls on this signal cost (0 for follow and rules)."""
    costs: dict[str, float] = {}
    calls = session.scalars(select(AiCallRow).where(AiCallRow.signal_key == signal.idempotency_key))
    for call in calls:
        costs[call.provider] = costs.get(call.provider, 0.0) + call.cost_usd
    return [
        {**t, "role": "opened" if t["signal_id"] == signal.id else "closed",
         "llm_cost_usd": costs.get(t["analyst"], 0.0)}
        for t in shadow_trades_in(session, signal_id=signal.id)
    ]  # fmt: skip


SECRET_WORDS = ("passphrase", "secret", "token", "password", "key")


def _alert(raw: dict[str, Any] | None) -> dict[str, Any]:
    """The alert as received, without anything that looks like a credential."""
    return {k: v for k, v in (raw or {}).items() if not any(w in k.lower() for w in SECRET_WORDS)}

"""Rows to JSON-ready dicts: one shape for the API and for dashboard events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.alert_fields import extra_fields
from shared.db import DecisionRow, FillRow, OrderRow, PositionRow, SignalRow, TradeRow


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def signal_dict(row: SignalRow, decision: DecisionRow | None) -> dict[str, Any]:
    if decision is None:
        status = "pending"
    else:
        status = "traded" if decision.risk_approved else f"no trade: {decision.action}"
    return {
        "id": row.id, "symbol": row.symbol, "action": row.action, "source": row.source,
        "strategy": row.strategy, "price": row.price, "timeframe": row.timeframe,
        "confidence": row.confidence, "stop_loss": row.stop_loss, "take_profit": row.take_profit,
        "received_at": _iso(row.received_at), "status": status,
        "decision_id": decision.id if decision else None,
        "fields": extra_fields(row.raw or {}),  # the alert's other fields: market_position, contracts...
    }  # fmt: skip


def decision_dict(row: DecisionRow) -> dict[str, Any]:
    return {
        "id": row.id, "signal_id": row.signal_id, "analyst": row.analyst, "action": row.action,
        "confidence": row.confidence, "rationale": row.rationale, "factors": row.factors,
        "stop_loss": row.stop_loss, "take_profit": row.take_profit, "risk_approved": row.risk_approved,
        "risk_reason": row.risk_reason, "quantity": row.quantity, "risk": row.risk, "proposal": row.proposal,
        "created_at": _iso(row.created_at),
    }  # fmt: skip


def order_dict(row: OrderRow) -> dict[str, Any]:
    return {
        "id": row.id, "client_id": row.client_id, "signal_id": row.signal_id, "decision_id": row.decision_id,
        "symbol": row.symbol, "side": row.side, "type": row.order_type, "quantity": row.quantity,
        "role": row.role, "exit_kind": row.exit_kind, "trigger_price": row.trigger_price,
        "limit_price": row.limit_price, "parent_client_id": row.parent_client_id,
        "filled_quantity": row.filled_quantity, "price": row.price, "reduce_only": row.reduce_only,
        "status": row.status, "exchange_id": row.exchange_id, "reason": row.reason,
        "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
    }  # fmt: skip


def fill_dict(row: FillRow) -> dict[str, Any]:
    return {
        "trade_id": row.trade_id, "client_id": row.client_id, "symbol": row.symbol, "side": row.side,
        "quantity": row.quantity, "price": row.price, "fee": row.fee, "time": _iso(row.time),
    }  # fmt: skip


def position_dict(row: PositionRow, mark: float | None) -> dict[str, Any]:
    unrealized = (mark - row.entry_price) * row.quantity if mark is not None and row.quantity else 0.0
    return {
        "symbol": row.symbol, "quantity": row.quantity, "entry_price": row.entry_price,
        "realized_pnl": row.realized_pnl, "unrealized_pnl": unrealized, "mark_price": mark,
        "opened_at": _iso(row.opened_at), "updated_at": _iso(row.updated_at),
    }  # fmt: skip


def trade_dict(row: TradeRow) -> dict[str, Any]:
    return {
        "id": row.id, "symbol": row.symbol, "side": row.side, "quantity": row.quantity,
        "entry_price": row.entry_price, "exit_price": row.exit_price, "pnl": row.pnl, "fees": row.fees,
        "opened_at": _iso(row.opened_at), "closed_at": _iso(row.closed_at), "exit_reason": row.exit_reason,
        "exit_detail": row.exit_detail, "funding": row.funding or 0.0, "forfeited": row.forfeited or 0.0,
        "signal_source": row.signal_source, "analyst": row.analyst, "initial_risk": row.initial_risk,
        "r_multiple": row.r_multiple, "legs": list(row.legs or []),
    }  # fmt: skip

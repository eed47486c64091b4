"""``GET /api/reviews?symbol=&limit=``: the AI position reviews (``agent.engine.reviews``), newest first, each
with its triggers, the answer, the outcome (done / held / refused with the rule / invalid / failed /
budget), the order placed and the AI call (provider, model, tokens, cost, validation errors)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db import AiCallRow, Database, PositionReviewRow
from shared.symbols import normalise_symbol

MAX_LIMIT = 500


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def review_dict(row: PositionReviewRow, call: AiCallRow | None) -> dict[str, Any]:
    return {
        "id": row.id, "symbol": row.symbol, "side": row.side, "entry_client_id": row.entry_client_id,
        "decision_id": row.decision_id, "analyst": row.analyst, "triggers": row.triggers,
        "action": row.action, "fraction": row.fraction, "new_stop": row.new_stop, "reason": row.reason,
        "outcome": row.outcome, "rule": row.rule, "detail": row.detail, "client_id": row.client_id,
        "cost_usd": row.cost_usd, "market_time": _iso(row.market_time), "created_at": _iso(row.created_at),
        "ai_call": None if call is None else {
            "id": call.id, "provider": call.provider, "model": call.model,
            "prompt_version": call.prompt_version, "prompt_hash": call.prompt_hash,
            "input_tokens": call.input_tokens, "output_tokens": call.output_tokens, "cost_usd": call.cost_usd,
            "validation_errors": json.loads(call.validation_errors or "[]"), "error": call.error,
        },
    }  # fmt: skip


def reviews(session: Session, symbol: str | None = None, decision_id: int | None = None,
            limit: int = 100) -> list[dict[str, Any]]:  # fmt: skip
    """The reviews (of a market, or of the position a decision opened), newest first, with their AI calls."""
    query = select(PositionReviewRow, AiCallRow).outerjoin(
        AiCallRow, AiCallRow.id == PositionReviewRow.ai_call_id
    )
    if symbol is not None:
        query = query.where(PositionReviewRow.symbol == symbol)
    if decision_id is not None:
        query = query.where(PositionReviewRow.decision_id == decision_id)
    rows = session.execute(query.order_by(PositionReviewRow.id.desc()).limit(limit)).all()
    return [review_dict(row, call) for row, call in rows]


def register_review_routes(app: Flask, db: Database) -> None:
    @app.get("/api/reviews")
    def position_reviews() -> Any:
        raw = request.args.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            return jsonify(error="bad request", details=[
                {"field": "limit", "message": f"must be an integer from 1 to {MAX_LIMIT}"}]), 400  # fmt: skip
        symbol = request.args.get("symbol") or None
        try:
            symbol = normalise_symbol(symbol) if symbol is not None else None
        except ValueError as exc:
            return jsonify(error="bad request", details=[{"field": "symbol", "message": str(exc)}]), 400
        with db.session() as session:
            found = reviews(session, symbol, limit=int(raw))
        return jsonify(reviews=found)

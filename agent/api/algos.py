"""``GET /api/algos``: the latest TWAP and iceberg algos, newest first, each with its progress (filled of
the total, slices sent, status and reason), for the dashboard's algos panel. ``?status=RUNNING`` keeps the
running ones; ``limit`` (1..100, default 20)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify, request
from sqlalchemy import select

from shared.db import AlgoRow, Database

if TYPE_CHECKING:
    from agent.engine.engine import Engine

STATUSES = ("RUNNING", "DONE", "CANCELED", "VETOED")
MAX_ALGOS = 100


def register_algo_list_route(app: Flask, db: Database, engine: Engine) -> None:
    @app.get("/api/algos")
    def algos() -> Any:
        details = []
        raw_limit = request.args.get("limit", "20")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_ALGOS:
            details.append({"field": "limit", "message": f"must be an integer from 1 to {MAX_ALGOS}"})
        status = request.args.get("status", "")
        if status and status not in STATUSES:
            details.append({"field": "status", "message": f"must be one of {', '.join(STATUSES)}"})
        if details:
            return jsonify(error="invalid query", details=details), 400
        query = select(AlgoRow.client_id).order_by(AlgoRow.id.desc()).limit(int(raw_limit))
        if status:
            query = query.where(AlgoRow.status == status)
        with db.session() as session:
            ids = list(session.scalars(query))
        views = [view for view in (engine.algos.progress(algo_id) for algo_id in ids) if view is not None]
        return jsonify(algos=views, running=sum(1 for v in views if v["status"] == "RUNNING"))

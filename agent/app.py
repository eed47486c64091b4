"""The agent service (Flask, port AGENT_PORT): the engine thread plus a read-only API.

Everything under ``/api`` and ``/internal`` needs ``Authorization: Bearer <API_TOKEN>``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, jsonify, request
from sqlalchemy import select, text

from agent.engine import Engine
from agent.wiring import build_engine
from shared.config import Settings, load_settings
from shared.db import Database, DecisionRow, FillRow, OrderRow, PositionRow, SignalRow, TradeRow
from shared.events import EventPublisher
from shared.http import bearer_token_ok
from shared.logs import configure_logging
from shared.serialize import decision_dict, fill_dict, order_dict, position_dict, signal_dict, trade_dict

MAX_LIMIT = 500


def _limit() -> int:
    raw = request.args.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        abort(
            Response(
                f'{{"error": "limit must be an integer from 1 to {MAX_LIMIT}"}}',
                400,
                mimetype="application/json",
            )
        )
    return int(raw)


def create_app(settings: Settings | None = None, start_engine: bool = True) -> Flask:
    settings = settings or load_settings()
    settings.require("api_token")
    token = settings.secret("api_token")
    configure_logging("agent", settings.log_level, settings.secret_values(), settings.log_dir)
    db = Database(settings.database_url)
    db.migrate()
    engine = build_engine(settings, db, EventPublisher(settings.socket_url, token))
    if start_engine:
        engine.start()

    app = Flask(__name__)
    app.extensions["engine"] = engine
    app.extensions["db"] = db

    @app.before_request
    def _authenticate() -> Any:
        if request.path.startswith(("/api/", "/internal/")) and not bearer_token_ok(request, token):
            return jsonify(error="unauthorized"), 401
        return None

    @app.errorhandler(404)
    def _not_found(_: Exception) -> Any:
        return jsonify(error="not found"), 404

    @app.get("/health")
    def health() -> Any:
        with db.session() as session:
            session.execute(text("SELECT 1"))
        return jsonify(status="ok", service="agent", engine=engine.status.state)

    @app.post("/internal/nudge")
    def nudge() -> Any:
        engine.nudge()
        return jsonify(status="ok"), 202

    @app.get("/api/market")
    def market() -> Any:
        return jsonify(
            markets=[m.snapshot().as_dict() for m in engine.markets.values()],
            correlation=engine.correlations(),
        )

    @app.get("/api/status")
    def status() -> Any:
        return jsonify(
            mode=settings.trading_mode,
            service="agent",
            engine=engine.snapshot(),
            config=settings.public_view(),
        )

    _register_journal_routes(app, db, engine)
    return app


def _register_journal_routes(app: Flask, db: Database, engine: Engine) -> None:
    @app.get("/api/signals")
    def signals() -> Any:
        with db.session() as session:
            rows = session.execute(
                select(SignalRow, DecisionRow)
                .outerjoin(DecisionRow, DecisionRow.signal_id == SignalRow.id)
                .order_by(SignalRow.id.desc())
                .limit(_limit())
            ).all()
            return jsonify(signals=[signal_dict(s, d) for s, d in rows])

    @app.get("/api/decisions")
    def decisions() -> Any:
        with db.session() as session:
            rows = session.scalars(select(DecisionRow).order_by(DecisionRow.id.desc()).limit(_limit()))
            return jsonify(decisions=[decision_dict(r) for r in rows])

    @app.get("/api/orders")
    def orders() -> Any:
        query = select(OrderRow).order_by(OrderRow.id.desc()).limit(_limit())
        signal_id = request.args.get("signal_id")
        if signal_id is not None:
            if not signal_id.isdigit():
                return jsonify(
                    error="invalid query", details=[{"field": "signal_id", "message": "must be an integer"}]
                ), 400
            query = query.where(OrderRow.signal_id == int(signal_id))
        with db.session() as session:
            return jsonify(orders=[order_dict(r) for r in session.scalars(query)])

    @app.get("/api/fills")
    def fills() -> Any:
        with db.session() as session:
            rows = session.scalars(select(FillRow).order_by(FillRow.id.desc()).limit(_limit()))
            return jsonify(fills=[fill_dict(r) for r in rows])

    @app.get("/api/positions")
    def positions() -> Any:
        with db.session() as session:
            rows = session.scalars(select(PositionRow).where(PositionRow.quantity != 0))
            return jsonify(positions=[position_dict(r, engine.exchange.mark_price(r.symbol)) for r in rows])

    @app.get("/api/trades")
    def trades() -> Any:
        with db.session() as session:
            rows = session.scalars(select(TradeRow).order_by(TradeRow.id.desc()).limit(_limit()))
            return jsonify(trades=[trade_dict(r) for r in rows])

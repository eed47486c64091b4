"""The agent service (Flask, port AGENT_PORT): the engine thread plus a read-only API.

Everything under ``/api`` and ``/internal`` needs ``Authorization: Bearer <API_TOKEN>``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

from flask import Flask, Response, abort, jsonify, request
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from agent.analysis.audit import AuditLog
from agent.analytics.live import journal_performance, llm_costs, trade_records, write_daily_report
from agent.analytics.vetoes import veto_summary
from agent.api.actions import register_action_routes
from agent.api.algos import register_algo_list_route
from agent.api.arena import register_arena_routes
from agent.api.backtests import register_backtest_routes
from agent.api.charts import register_chart_routes
from agent.api.decision_story import decision_story
from agent.api.journal_tables import register_journal_table_routes
from agent.api.metrics import agent_collectors
from agent.api.overview import register_overview_routes
from agent.api.reviews import register_review_routes, reviews
from agent.api.tables import register_table_routes
from agent.engine import control
from agent.engine.engine import Engine
from agent.execution.algos import AlgoKind, AlgoRequest
from agent.journal.upkeep import Upkeep
from agent.risk.state import STATES
from agent.wiring import build_engine
from shared.config import Settings, load_settings
from shared.db import Database, DecisionRow, FillRow, FundingRow, OrderRow, PositionRow, SignalRow, TradeRow
from shared.errors import ConfigError, InvalidInput
from shared.events import EventPublisher
from shared.http import bearer_token_ok
from shared.log_feed import EventLogHandler
from shared.logs import configure_logging, log_event
from shared.metrics import install_metrics
from shared.models import Side
from shared.notify import install_notifications
from shared.priority import lower_thread_priority
from shared.schema import refuse_unless_schema_current
from shared.serialize import decision_dict, fill_dict, order_dict, position_dict, signal_dict, trade_dict
from shared.symbols import normalise_symbol

MAX_LIMIT = 500
logger = logging.getLogger(__name__)


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


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def create_app(settings: Settings | None = None, start_engine: bool = True) -> Flask:
    settings = settings or load_settings()
    settings.require("api_token")
    token = settings.secret("api_token")
    configure_logging(
        "agent",
        settings.log_level,
        settings.secret_values(),
        settings.log_dir,
        settings.log_line_max_bytes,
    )
    install_notifications(settings, "agent")
    db = Database(settings.database_url)
    refuse_unless_schema_current(db)
    publisher = EventPublisher(settings.socket_url, token)
    try:
        engine = build_engine(settings, db, publisher)
    except ConfigError as exc:
        for line in exc.problems:
            log_event(logger, "refusing_to_start", logging.CRITICAL, problem=line)
        raise
    logging.getLogger().addHandler(EventLogHandler(publisher.publish, "agent"))  # warnings to the dashboard
    if settings.daily_reports:
        reports = settings.data_dir / "reports"
        engine.on_day_closed = lambda day: _daily_report(db, day, reports, settings.starting_equity)
    if start_engine:
        engine.start()
        if engine.thread_id is not None:
            lower_thread_priority(engine.thread_id, settings.engine_nice)
        Upkeep(
            db, retention_days=settings.retention_days, interval_hours=settings.backup_interval_hours,
            folder=settings.backup_dir or settings.data_dir / "backups", keep=settings.backup_keep,
        ).start()  # fmt: skip

    app = Flask(__name__)
    app.extensions["engine"] = engine
    app.extensions["db"] = db
    install_metrics(app, "agent", agent_collectors(engine, db))

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
        """200 while the database answers and the engine loop runs; 503 naming the reason otherwise (the
        container's healthcheck restarts an agent whose engine died or hangs)."""
        try:
            with db.session() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log_event(logger, "health_db_failed", logging.ERROR, error=str(exc))
            return jsonify(status="error", service="agent", reason="database unavailable"), 503
        problem = engine.loop_problem(settings.engine_stuck_s)
        if problem:
            log_event(logger, "health_engine_failed", logging.ERROR, reason=problem)
            return jsonify(status="error", service="agent", engine=engine.status.state, reason=problem), 503
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

    @app.post("/api/algos")
    def start_algo() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(
                error="invalid algo", details=[{"field": "body", "message": "must be a JSON object"}]
            ), 400
        try:
            algo = AlgoRequest(
                kind=cast(AlgoKind, body.get("kind")), symbol=normalise_symbol(str(body.get("symbol", ""))),
                side=Side(str(body.get("side", "")).upper()), quantity=float(body.get("quantity", 0)),
                slices=int(body.get("slices", 1)), duration_s=float(body.get("duration_s", 0)),
                visible_quantity=_optional_float(body.get("visible_quantity")),
                limit_price=_optional_float(body.get("limit_price")),
            )  # fmt: skip
        except InvalidInput as exc:  # the problems are data: each names its field
            return jsonify(error="invalid algo", details=exc.details()), 400
        except (ValueError, TypeError) as exc:  # a value of the wrong type: side, a number
            details = [{"field": "body", "message": f"side must be buy or sell and numbers numbers ({exc})"}]
            return jsonify(error="invalid algo", details=details), 400
        try:
            algo_id = control.start_algo(engine, algo)
        except control.AlgoVetoed as exc:
            return _vetoed(exc.verdict.reason, exc.verdict.rule), 400
        view = engine.algos.progress(algo_id)
        assert view is not None
        if view["status"] == "VETOED":  # its first slice did not pass: recorded, nothing sent
            return _vetoed(view["reason"], "slice", view), 400
        return jsonify(view), 201

    @app.get("/api/algos/<algo_id>")
    def algo_progress(algo_id: str) -> Any:
        view = engine.algos.progress(algo_id)
        return (jsonify(view), 200) if view else (jsonify(error="not found"), 404)

    @app.post("/api/algos/<algo_id>/cancel")
    def cancel_algo(algo_id: str) -> Any:
        view = control.cancel_algo(engine, algo_id)
        return (jsonify(view), 200) if view else (jsonify(error="not found"), 404)

    @app.get("/api/risk")
    def risk() -> Any:
        return jsonify(engine.risk_report())

    @app.post("/api/control/kill")
    def kill() -> Any:
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        close = body.get("close_positions", False)
        if not isinstance(close, bool):
            details = [{"field": "close_positions", "message": "must be true or false"}]
            return jsonify(error="invalid request", details=details), 400
        return jsonify(control.kill(engine, str(body.get("reason") or "kill switch"), close).as_dict())

    @app.post("/api/control/state")
    def set_state() -> Any:
        body = request.get_json(silent=True)
        state = body.get("state") if isinstance(body, dict) else None
        if state not in STATES:
            details = [{"field": "state", "message": f"must be one of {', '.join(STATES)}"}]
            return jsonify(error="invalid request", details=details), 400
        assert isinstance(body, dict)
        return jsonify(engine.set_trading_state(state, str(body.get("reason") or "")))

    @app.get("/api/performance")
    def performance() -> Any:
        account = engine.exchange.account()
        funding = -engine.market_driver.ledger_total("funding")
        trades = trade_records(db)
        costs = llm_costs(db, engine.analyst.name)
        performance = journal_performance(trades, settings.starting_equity, account.fees_paid, funding, costs)
        return jsonify({**performance, "vetoes": veto_summary(db).as_dict()})

    @app.get("/api/status")
    def status() -> Any:
        return jsonify(
            mode=settings.trading_mode,
            service="agent",
            engine=engine.snapshot(),
            config=settings.public_view(),
        )

    _register_journal_routes(app, db, engine)
    register_chart_routes(app, db, engine, settings.starting_equity)
    register_table_routes(app, db)
    register_arena_routes(app, db, engine, settings.starting_equity)
    register_action_routes(app, engine)
    register_overview_routes(app, db, engine, settings)
    register_review_routes(app, db)
    assert settings.backtest_dir is not None  # filled in from DATA_DIR by the settings
    register_backtest_routes(app, settings.backtest_dir)
    register_journal_table_routes(app, db, engine)
    register_algo_list_route(app, db, engine)
    return app


def _daily_report(db: Database, day: str, folder: Path, starting_equity: float) -> None:
    path = write_daily_report(db, day, folder, starting_equity)
    log_event(logger, "daily_report", day=day, path=str(path))


def _vetoed(message: str, rule: str, algo: dict[str, Any] | None = None) -> Response:
    """The answer to an algo the risk gate refused (``algo``: its progress, when it was recorded)."""
    body: dict[str, Any] = {"error": "vetoed by risk", "details": [{"field": "quantity", "message": message,
                                                                   "rule": rule}]}  # fmt: skip
    if algo is not None:
        body["algo"] = algo
    return jsonify(body)


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

    @app.get("/api/decisions/<int:decision_id>")
    def decision(decision_id: int) -> Any:
        with db.session() as session:
            row = session.get(DecisionRow, decision_id)
            if row is None:
                return jsonify(error="not found"), 404
            signal = session.get(SignalRow, row.signal_id)
            key = signal.idempotency_key if signal else ""
            story = decision_story(session, row)
            story["reviews"] = reviews(session, decision_id=decision_id)  # of the position it opened
            return jsonify(decision=decision_dict(row), ai_calls=AuditLog(db).calls_for(key), **story)

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

    @app.get("/api/funding")
    def funding() -> Any:
        """Funding the exchange settled on our positions (Bluefin Pro's funding history), newest first."""
        with db.session() as session:
            rows = list(session.scalars(select(FundingRow).order_by(FundingRow.time.desc()).limit(_limit())))
            total = session.scalar(select(func.sum(FundingRow.amount))) or 0.0
        payments = [
            {"symbol": r.symbol, "amount": r.amount, "rate": r.rate, "side": r.side,
             "time": r.time.isoformat()}
            for r in rows
        ]  # fmt: skip
        return jsonify(funding=payments, total=total)

    @app.get("/api/trades")
    def trades() -> Any:
        with db.session() as session:
            rows = session.scalars(select(TradeRow).order_by(TradeRow.id.desc()).limit(_limit()))
            return jsonify(trades=[trade_dict(r) for r in rows])

"""The webhook service (Flask, port WEBHOOK_PORT).

``POST /webhook``: authenticate, validate, store the signal exactly once (unique idempotency key), answer
within TradingView's 3 s, then nudge the agent in the background. It never trades and never calls the
exchange or an AI model.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from shared.config import Settings, load_settings
from shared.db import Database
from shared.errors import InvalidInput
from shared.logs import configure_logging, log_event
from shared.metrics import install_metrics
from shared.notify import install_notifications
from shared.schema import refuse_unless_schema_current
from webhook.alerts import AuthError, parse_alert
from webhook.gate import SenderGate
from webhook.intake import IntakeUnavailable, open_intake
from webhook.nudge import AgentNudger

MAX_BODY_BYTES = 64 * 1024
# SQLite: wait at most this long for the agent's write transaction (they last milliseconds), so a stuck writer
# answers 503 "send again" well inside TradingView's 3 s rather than after the agent's 10 s
DB_BUSY_TIMEOUT_MS = 1_500
logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    settings.require("webhook_passphrase", "api_token")
    passphrase = settings.secret("webhook_passphrase")
    configure_logging(
        "webhook",
        settings.log_level,
        settings.secret_values(),
        settings.log_dir,
        settings.log_line_max_bytes,
    )
    db = Database(settings.database_url, busy_timeout_ms=DB_BUSY_TIMEOUT_MS)
    refuse_unless_schema_current(db)
    intake = open_intake(db, DB_BUSY_TIMEOUT_MS / 1000)
    gate = SenderGate(settings.webhook_allowed_ips, settings.webhook_require_tv_cert)
    nudger = AgentNudger(settings.agent_url, settings.secret("api_token"))

    app = Flask(__name__)
    install_notifications(settings, "webhook")
    install_metrics(app, "webhook")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["db"] = db

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        messages = {413: f"body larger than {MAX_BODY_BYTES // 1024} KiB"}
        return jsonify(error=messages.get(exc.code or 500, exc.description or exc.name)), exc.code

    @app.errorhandler(SQLAlchemyError)
    @app.errorhandler(IntakeUnavailable)
    def _database_error(exc: SQLAlchemyError | IntakeUnavailable) -> Any:
        log_event(logger, "alert_store_failed", logging.ERROR, error=type(exc).__name__)
        return jsonify(error="database unavailable, send again"), 503

    @app.get("/health")
    def health() -> Any:
        try:
            with db.session() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log_event(logger, "health_db_failed", logging.ERROR, error=str(exc))
            return jsonify(status="error", service="webhook", reason="database unavailable"), 503
        return jsonify(status="ok", service="webhook")

    @app.post("/webhook")
    def webhook() -> Any:
        remote = gate.client_address(request)
        refusal = gate.refusal(request, remote)
        if refusal:
            log_event(logger, "alert_rejected", logging.WARNING, reason=refusal, remote=remote)
            return jsonify(error="forbidden", reason=refusal), 403
        body = request.get_data(cache=False)
        try:
            signal = parse_alert(
                body, passphrase=passphrase, max_age_s=settings.webhook_max_age_s, now=datetime.now(UTC),
                symbols=settings.symbols,
            )  # fmt: skip
        except AuthError as exc:
            log_event(logger, "alert_rejected", logging.WARNING, reason=str(exc), remote=remote)
            return jsonify(error="unauthorized"), 401
        except InvalidInput as exc:
            log_event(logger, "alert_rejected", logging.WARNING, reason=str(exc), remote=remote)
            return jsonify(error="invalid alert", details=[p.as_dict() for p in exc.problems]), 400
        signal_id, created = intake.store(signal)
        fields: dict[str, Any] = {
            "signal_id": signal_id,
            "symbol": signal.symbol,
            "action": signal.action.value,
            "remote": remote,
        }
        if not created:
            log_event(logger, "alert_duplicate", **fields)
            return jsonify(status="duplicate", signal_id=signal_id), 200
        log_event(logger, "alert_accepted", **fields)
        nudger.nudge(signal_id)
        return jsonify(status="accepted", signal_id=signal_id), 202

    return app

"""The webhook service (ASGI, port WEBHOOK_PORT; gunicorn runs it with ``webhook.worker.WebhookWorker``).

``POST /webhook``: authenticate, validate, store the signal exactly once (unique idempotency key), answer
within TradingView's 3 s, then nudge the agent in the background. It never trades and never calls the
exchange or an AI model.

It answers from one event loop per worker (uvicorn's C HTTP parser, Starlette's routing): an alert costs
well under a millisecond of CPU here, where Flask under gunicorn's threads cost 2 to 3 ms, most of it the
framework's, which capped the intake at about 500 alerts/s on two cores.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.config import Settings, load_settings
from shared.db import Database
from shared.errors import InvalidInput
from shared.logs import configure_logging, log_event
from shared.metrics import METRICS_PATH, AsgiMetrics, ServiceMetrics
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


def body_too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"body larger than {limit // 1024} KiB")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, refused (413) past ``limit`` bytes: by its Content-Length before any is read, or as
    soon as a chunked body goes past it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: Settings | None = None) -> Starlette:
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
    install_notifications(settings, "webhook")
    metrics = ServiceMetrics("webhook")

    async def webhook(request: Request) -> Response:
        peer = request.client.host if request.client else ""
        remote = gate.client_address(peer, request.headers)
        refusal = gate.refusal(peer, request.headers, remote)
        if refusal:
            log_event(logger, "alert_rejected", logging.WARNING, reason=refusal, remote=remote)
            return JSONResponse({"error": "forbidden", "reason": refusal}, 403)
        body = await read_body(request)
        try:
            signal = parse_alert(
                body, passphrase=passphrase, max_age_s=settings.webhook_max_age_s, now=datetime.now(UTC),
                symbols=settings.symbols,
            )  # fmt: skip
        except AuthError as exc:
            log_event(logger, "alert_rejected", logging.WARNING, reason=str(exc), remote=remote)
            return JSONResponse({"error": "unauthorized"}, 401)
        except InvalidInput as exc:
            log_event(logger, "alert_rejected", logging.WARNING, reason=str(exc), remote=remote)
            details = [p.as_dict() for p in exc.problems]
            return JSONResponse({"error": "invalid alert", "details": details}, 400)
        signal_id, created = await intake.store(signal)
        fields: dict[str, Any] = {
            "signal_id": signal_id,
            "symbol": signal.symbol,
            "action": signal.action.value,
            "remote": remote,
        }
        if not created:
            log_event(logger, "alert_duplicate", **fields)
            return JSONResponse({"status": "duplicate", "signal_id": signal_id}, 200)
        log_event(logger, "alert_accepted", **fields)
        nudger.nudge(signal_id)
        return JSONResponse({"status": "accepted", "signal_id": signal_id}, 202)

    def health(request: Request) -> Response:  # a plain function: Starlette runs it on a worker thread
        try:
            with db.session() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log_event(logger, "health_db_failed", logging.ERROR, error=str(exc))
            failed = {"status": "error", "service": "webhook", "reason": "database unavailable"}
            return JSONResponse(failed, 503)
        return JSONResponse({"status": "ok", "service": "webhook"})

    async def metrics_page(request: Request) -> Response:
        return Response(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    async def database_error(request: Request, exc: Exception) -> Response:
        log_event(logger, "alert_store_failed", logging.ERROR, error=type(exc).__name__)
        return JSONResponse({"error": "database unavailable, send again"}, 503)

    routes = [
        Route("/webhook", webhook, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route(METRICS_PATH, metrics_page, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AsgiMetrics, metrics=metrics, routes=[route.path for route in routes])],
        exception_handlers={
            HTTPException: http_error,
            IntakeUnavailable: database_error,
            SQLAlchemyError: database_error,
        },
    )
    app.state.db = db
    return app

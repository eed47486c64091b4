"""The websocket service (Flask-SocketIO, port SOCKET_PORT).

Serves the dashboard at ``/``, refuses socket.io clients without ``auth={"token": API_TOKEN}``, and fans
out the events the agent POSTs to ``/internal/events`` (same token). It only reads the database.
With ``REDIS_URL`` it uses Flask-SocketIO's Redis message queue, so ``SOCKET_WORKERS`` workers each deliver
every event to their own clients, whichever worker the agent's POST reached.
Runs under gunicorn's gevent worker (websocket transport through simple-websocket); under Flask's test
client or plain threads it falls back to the threading mode.
"""

from __future__ import annotations

import hmac
import importlib.util
import logging
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template, request, send_from_directory
from flask_socketio import SocketIO, emit
from socketio import exceptions as socketio_exceptions
from sqlalchemy.exc import SQLAlchemyError

from dashboard.services import install_service_health
from dashboard.snapshot import read_snapshot
from shared.config import Settings, load_settings
from shared.db import Database
from shared.events import EVENTS_PATH, read_events
from shared.http import bearer_token_ok
from shared.logs import configure_logging, log_event
from shared.metrics import install_metrics
from shared.notify import install_notifications
from shared.schema import refuse_unless_schema_current

MODULES = Path(__file__).resolve().parent / "node_modules"
VENDOR_DIR = MODULES / "socket.io-client" / "dist"
# TradingView's lightweight-charts, its standalone build (window.LightweightCharts), bundled: works offline
CHARTS_DIR = MODULES / "lightweight-charts" / "dist"
CHARTS_FILE = "lightweight-charts.standalone.production.js"
# report.html's stylesheet and chart script (agent/backtest), for the Backtests view: the dashboard's CSP
# allows no inline script or style, so the view loads a report's page with these from here instead
_BACKTEST = importlib.util.find_spec("agent.backtest")
REPORT_ASSETS = Path(_BACKTEST.origin).parent if _BACKTEST and _BACKTEST.origin else Path("agent/backtest")
REPORT_FILES = {"report.css": "text/css", "report.js": "application/javascript"}
logger = logging.getLogger(__name__)


def _async_mode() -> str:
    try:
        from gevent import monkey
    except ImportError:
        return "threading"
    return "gevent" if monkey.is_module_patched("socket") else "threading"


def _token_matches(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    settings.require("api_token")
    token = settings.secret("api_token")
    configure_logging(
        "websocket",
        settings.log_level,
        settings.secret_values(),
        settings.log_dir,
        settings.log_line_max_bytes,
    )
    db = Database(settings.database_url)
    refuse_unless_schema_current(db)

    app = Flask(__name__)
    # With REDIS_URL every worker publishes its emits to Redis and delivers the others' to its own clients.
    socketio = SocketIO(
        app,
        async_mode=_async_mode(),
        message_queue=settings.redis_url or None,
        channel=settings.redis_channel,
        logger=False,
        engineio_logger=False,
    )
    app.extensions["db"] = db

    @app.get("/health")
    def health() -> Any:
        return jsonify(status="ok", service="websocket")

    @app.get("/")
    def index() -> Any:
        # several workers share no polling sessions: their browsers use the websocket transport only
        transports = "websocket" if settings.socket_workers > 1 else "websocket,polling"
        return render_template(
            "index.html", symbols=settings.symbols, mode=settings.trading_mode, transports=transports
        )

    @app.get("/static/vendor/socket.io.min.js")
    def socketio_client() -> Any:
        if not (VENDOR_DIR / "socket.io.min.js").exists():
            return jsonify(error="socket.io client missing: run `npm ci --prefix websocket/dashboard`"), 503
        return send_from_directory(VENDOR_DIR, "socket.io.min.js", mimetype="application/javascript")

    @app.get("/static/vendor/lightweight-charts.js")
    def charts_library() -> Any:
        if not (CHARTS_DIR / CHARTS_FILE).exists():
            return jsonify(error="lightweight-charts missing: run `npm ci --prefix websocket/dashboard`"), 503
        return send_from_directory(CHARTS_DIR, CHARTS_FILE, mimetype="application/javascript")

    @app.get("/static/backtest/<name>")
    def backtest_report_asset(name: str) -> Any:
        if name not in REPORT_FILES:
            return jsonify(error="not found"), 404
        return send_from_directory(REPORT_ASSETS, name, mimetype=REPORT_FILES[name])

    @app.post(EVENTS_PATH)
    def events() -> Any:
        if not bearer_token_ok(request, token):
            return jsonify(error="unauthorized"), 401
        body = request.get_json(silent=True)
        events, problems = read_events(body)
        if problems:
            return jsonify(error="invalid event", details=problems), 400
        for event in events:
            socketio.emit(event["event"], event["data"])
        return jsonify(status="ok", events=len(events))

    @socketio.on("connect")
    def connect(auth: Any = None) -> None:
        given = auth.get("token") if isinstance(auth, dict) else None
        if not _token_matches(given, token):
            log_event(logger, "socket_refused", logging.WARNING, remote=request.remote_addr)
            raise socketio_exceptions.ConnectionRefusedError("unauthorized")
        try:
            emit("snapshot", read_snapshot(db))
        except SQLAlchemyError as exc:
            log_event(logger, "snapshot_failed", logging.ERROR, error=str(exc))

    app.extensions["bluefinai.socketio"] = socketio
    for name, path in (
        ("socketio_client", VENDOR_DIR / "socket.io.min.js"),
        ("charts", CHARTS_DIR / CHARTS_FILE),
    ):
        if not path.exists():
            log_event(logger, f"{name}_missing", logging.WARNING, hint="npm ci --prefix websocket/dashboard")
    install_notifications(settings, "websocket")
    install_metrics(app, "websocket")
    install_service_health(app, socketio, settings)
    return app

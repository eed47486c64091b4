"""Notifications through apprise, received by a local JSON webhook (apprise's json:// posts)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.analytics.live import write_daily_report
from shared.db import Database, TradeRow
from shared.logs import log_event
from shared.notify import (
    NotificationHandler,
    Notifier,
    classify,
    install_notifications,
    notify_command,
    url_secrets,
)
from tests.conftest import TOKEN, free_port, wait_for

PRIVATE_KEY = "0x" + "ab12" * 16
ANTHROPIC_KEY = "sk-ant-api03-secret-value-0123456789"
HOOK_TOKEN = "hooktoken0123456789abcdef"


class Receiver:
    """A JSON webhook on 127.0.0.1: records every body it is posted; can answer 500 or hang."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        self.mode = "ok"  # ok | fail | hang
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.mode == "hang":
                    receiver.release.wait(30)
                receiver.bodies.append(body)
                receiver.paths.append(self.path)
                status = 500 if receiver.mode == "fail" else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = f"/hook/{HOOK_TOKEN}", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"json://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in list(self.bodies)]

    def texts(self) -> list[str]:
        return [f"{m['title']} | {m['message']}" for m in self.messages]

    def wait(self, count: int, timeout_s: float = 10.0) -> list[str]:
        wait_for(lambda: len(self.bodies) >= count, timeout_s)
        return self.texts()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def root_at_info() -> Iterator[logging.Logger]:
    """The root logger at INFO (as configure_logging sets it); the notification handler removed after."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    yield root
    for handler in [h for h in root.handlers if isinstance(h, NotificationHandler)]:
        root.removeHandler(handler)
        handler.notifier.close(1.0)
    root.setLevel(level)


def installed(make_settings: Any, receiver: Receiver, **overrides: Any) -> Notifier:
    settings = make_settings(notify_urls=receiver.url(), **overrides)
    notifier = install_notifications(settings, "agent")
    assert notifier is not None
    return notifier


orders_log = logging.getLogger("agent.execution.orders")
engine_log = logging.getLogger("agent.engine.engine")
app_log = logging.getLogger("agent.api.app")


def test_lost_order_liquidation_and_kill_switch_arrive_with_their_text(
    make_settings: Any, receiver: Receiver, root_at_info: logging.Logger
) -> None:
    installed(make_settings, receiver, trading_mode="simulation")
    log_event(orders_log, "order_lost", logging.ERROR, client_id="bfa-123", alert=True)
    log_event(engine_log, "liquidated", logging.ERROR, symbol="BTC-PERP", alert=True)
    log_event(engine_log, "kill_switch", logging.ERROR, reason="panic", cancelled=2, closed=1, alert=True)
    log_event(orders_log, "order_result", client_id="bfa-9", status="OPEN")  # routine: no notification
    texts = receiver.wait(3)
    time.sleep(0.3)
    assert len(receiver.bodies) == 3
    assert texts[0].startswith("[simulation] agent: Order LOST | order bfa-123 is LOST")
    assert texts[1] == "[simulation] BTC-PERP: Liquidation | the position was LIQUIDATED by the exchange"
    assert texts[2].startswith(
        "[simulation] agent: Kill switch | KILL SWITCH: panic; 2 orders cancelled, 1 pos"
    )
    assert receiver.paths[0] == f"/hook/{HOOK_TOKEN}"
    assert {m["type"] for m in receiver.messages} == {"info"}


def test_the_same_message_twice_within_the_window_arrives_once(
    make_settings: Any, receiver: Receiver, root_at_info: logging.Logger
) -> None:
    installed(make_settings, receiver, notify_dedup_s=300)
    for _ in range(3):
        log_event(engine_log, "liquidated", logging.ERROR, symbol="BTC-PERP", alert=True)
    log_event(engine_log, "liquidated", logging.ERROR, symbol="ETH-PERP", alert=True)  # another message
    texts = receiver.wait(2)
    time.sleep(0.3)
    assert len(receiver.bodies) == 2
    assert texts[0].startswith("[simulation] BTC-PERP") and texts[1].startswith("[simulation] ETH-PERP")


def test_dedup_window_passes_and_hourly_cap_holds_back_then_summarises(receiver: Receiver) -> None:
    clock = FakeClock()
    notifier = Notifier(
        [receiver.url()], service="agent", mode="real", dedup_s=60, max_per_hour=2, clock=clock, tick_s=0.02
    )
    try:
        assert notifier.notify("lost", "order a is LOST")
        assert not notifier.notify("lost", "order a is LOST")  # duplicate
        clock.now += 61
        assert notifier.notify("lost", "order a is LOST")  # the window passed: again
        assert not notifier.notify("fill", "BUY 1 filled")  # over the cap of 2 an hour: held back
        assert not notifier.notify("stop", "stop hit")
        assert not notifier.notify("stop", "another stop hit")
        receiver.wait(2)
        time.sleep(0.3)
        assert len(receiver.bodies) == 2  # nothing more within the hour
        clock.now += 3600
        texts = receiver.wait(3)
        assert texts[2].startswith("[real] agent: 3 notifications held back | 3 notifications held back")
        assert "2 stop, 1 fill" in texts[2] and "NOTIFY_MAX_PER_HOUR" in texts[2]
        assert notifier.notify("fill", "BUY 2 filled")  # room again (the summary took one of two)
        receiver.wait(4)
        time.sleep(0.2)
        assert len(receiver.bodies) == 4
    finally:
        notifier.close()


def test_no_secret_ever_leaves(make_settings: Any, receiver: Receiver, root_at_info: logging.Logger) -> None:
    installed(make_settings, receiver, anthropic_api_key=ANTHROPIC_KEY, bluefin_private_key=PRIVATE_KEY)
    log_event(engine_log, "kill_switch", logging.ERROR, reason=f"key {PRIVATE_KEY} token {TOKEN}", alert=True)
    log_event(
        engine_log, "engine_step_failed", logging.ERROR, error=f"401 from Anthropic for {ANTHROPIC_KEY}"
    )
    log_event(engine_log, "liquidated", logging.ERROR, symbol=f"X{HOOK_TOKEN}", alert=True)  # the URL's token
    receiver.wait(3)
    raw = b"".join(receiver.bodies).decode()
    for secret in (PRIVATE_KEY, TOKEN, ANTHROPIC_KEY, HOOK_TOKEN, PRIVATE_KEY[2:]):
        assert secret not in raw
    assert raw.count("***") >= 4
    assert "engine_step_failed: error=401 from Anthropic for ***" in raw


def test_url_secrets_cover_tokens_in_any_part_of_the_url() -> None:
    found = url_secrets(
        ["tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/987654321", "mailto://me:pw-9876@x.org"]
    )
    assert "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" in found and "987654321" in found
    assert "pw-9876" in found and "me" in found


def test_notify_events_filters(make_settings: Any, receiver: Receiver, root_at_info: logging.Logger) -> None:
    installed(make_settings, receiver, notify_events="lost")
    log_event(engine_log, "liquidated", logging.ERROR, symbol="BTC-PERP", alert=True)
    log_event(engine_log, "kill_switch", logging.ERROR, reason="x", cancelled=0, closed=0, alert=True)
    log_event(orders_log, "order_lost", logging.ERROR, client_id="bfa-7", alert=True)
    texts = receiver.wait(1)
    time.sleep(0.3)
    assert len(receiver.bodies) == 1 and "bfa-7" in texts[0]


def test_nothing_is_installed_without_urls(make_settings: Any, root_at_info: logging.Logger) -> None:
    assert install_notifications(make_settings(), "agent") is None
    assert not [h for h in root_at_info.handlers if isinstance(h, NotificationHandler)]


def test_a_failing_receiver_never_reaches_the_caller_and_is_logged(
    make_settings: Any, receiver: Receiver, root_at_info: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.mode = "fail"
    notifier = installed(make_settings, receiver)
    started = time.perf_counter()
    log_event(orders_log, "order_lost", logging.ERROR, client_id="bfa-1", alert=True)
    assert time.perf_counter() - started < 0.05
    wait_for(lambda: notifier.failed == 1)
    failed = [r for r in caplog.records if r.getMessage() == "notify_failed"]
    assert failed and failed[0].levelno == logging.WARNING
    assert failed[0].fields["kind"] == "lost"  # type: ignore[attr-defined]
    assert HOOK_TOKEN not in json.dumps(failed[0].fields)  # type: ignore[attr-defined]
    assert len(receiver.bodies) == 1  # it was tried once, not resent


def test_a_hanging_receiver_does_not_block_log_event(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.mode = "hang"
    notifier = Notifier([receiver.url(rto="1", cto="1")], service="agent", mode="real", tick_s=0.05)
    handler = NotificationHandler(notifier, "agent")
    log = logging.getLogger("test.hang")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        started = time.perf_counter()
        for n in range(20):
            log_event(log, "order_lost", logging.ERROR, client_id=f"bfa-{n}", alert=True)
        assert time.perf_counter() - started < 0.2  # the receiver holds each post for 30 s
        # the failure is counted, then logged by the notifier's thread: wait for both
        wait_for(
            lambda: notifier.failed >= 1 and any(r.getMessage() == "notify_failed" for r in caplog.records),
            10,
        )
    finally:
        log.removeHandler(handler)
        receiver.release.set()
        notifier.close(1.0)


def test_the_error_rate_rule_fires_once_past_the_threshold(receiver: Receiver) -> None:
    clock = FakeClock()
    notifier = Notifier([receiver.url()], service="agent", mode="real", clock=clock, tick_s=0.02)
    handler = NotificationHandler(notifier, "agent", error_rate_per_min=5, clock=clock)
    log = logging.getLogger("test.errors")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        for _ in range(4):
            log_event(log, "something_failed", logging.ERROR, error="x")
            log_event(log, "something_odd", logging.WARNING)  # warnings do not count
        notifier.flush()
        time.sleep(0.2)
        assert receiver.bodies == []
        for _ in range(10):
            log_event(log, "something_failed", logging.ERROR, error="x")
        texts = receiver.wait(1)
        time.sleep(0.3)
        assert len(receiver.bodies) == 1
        assert texts[0].startswith("[real] agent: Error rate | 5 errors in the last minute in agent")
        clock.now += 61  # the old errors leave the window: a new burst notifies again
        for _ in range(4):
            log_event(log, "something_failed", logging.ERROR, error="x")
        notifier.flush()
        time.sleep(0.2)
        assert len(receiver.bodies) == 1
        log_event(log, "other_failure", logging.ERROR)
        texts = receiver.wait(2)
        assert "the latest: other_failure" in texts[1]
    finally:
        log.removeHandler(handler)
        notifier.close(1.0)


@pytest.mark.parametrize(
    ("event", "fields", "expected"),
    [
        (
            "fill_booked",
            {
                "symbol": "BTC-PERP",
                "side": "BUY",
                "qty": 0.01,
                "price": 50000.0,
                "role": "entry",
                "exit_kind": "",
            },
            ("fill", "BTC-PERP", "BUY 0.01 filled at 50,000.00 (entry)"),
        ),
        (
            "fill_booked",
            {
                "symbol": "BTC-PERP",
                "side": "SELL",
                "qty": 0.01,
                "price": 49000.0,
                "role": "stop_loss",
                "exit_kind": "trailing_stop",
            },
            ("stop", "BTC-PERP", "SELL 0.01 filled at 49,000.00 (trailing stop)"),
        ),
        (
            "fill_booked",
            {
                "symbol": "ETH-PERP",
                "side": "SELL",
                "qty": 1,
                "price": 3000,
                "role": "partial_take_profit",
                "exit_kind": "partial_take_profit",
            },
            ("target", "ETH-PERP", "SELL 1 filled at 3,000.00 (partial take profit)"),
        ),
        (
            "position_exit",
            {"symbol": "BTC-PERP", "exit": "break_even", "reason": "closed at 1 through the stop 2"},
            ("stop", "BTC-PERP", "break even hit: closed at 1 through the stop 2; closing the position"),
        ),
        ("position_exit", {"symbol": "BTC-PERP", "exit": "time_exit", "reason": "stagnant"}, None),
        (
            "external_activity",
            {"symbol": "SOL-PERP", "reason": "an order we did not place"},
            (
                "external",
                "SOL-PERP",
                "EXTERNAL activity: an order we did not place; the agent leaves this market alone",
            ),
        ),
        (
            "trading_state",
            {"state": "HALTED", "cause": "daily_loss", "reason": "lost 5%", "until": "2026-12-03"},
            ("breaker", None, "trading HALTED (daily_loss): lost 5%; until 2026-12-03"),
        ),
        ("trading_state", {"state": "HALTED", "cause": "kill", "reason": "x", "until": None}, None),
        (
            "ai_breaker_open",
            {"provider": "claude", "error": "timeout"},
            ("ai_degraded", None, "AI analyst claude degraded: timeout; fallback decides"),
        ),
        (
            "health_engine_failed",
            {"reason": "engine loop stuck"},
            ("service_down", None, "unhealthy: engine loop stuck"),
        ),
        ("order_result", {"client_id": "x", "status": "FILLED"}, None),
    ],
)
def test_classify(event: str, fields: dict[str, Any], expected: Any) -> None:
    assert classify(event, fields, logging.INFO) == expected


def test_engine_errors_and_alerts_are_engine_errors() -> None:
    assert classify("engine_step_crashed", {}, logging.ERROR, "agent.engine.engine", "ZeroDivisionError: boom") == (
        "engine_error", None, "engine_step_crashed: ZeroDivisionError: boom",
    )  # fmt: skip
    assert classify("cancel_failed", {"client_id": "c", "alert": True}, logging.ERROR, "agent.execution.orders") == (
        "engine_error", None, "cancel_failed: client_id=c",
    )  # fmt: skip
    assert classify("snapshot_failed", {"error": "x"}, logging.ERROR, "dashboard.app") is None
    assert classify("engine_step_failed", {"error": "x"}, logging.WARNING, "agent.engine.engine") is None


def test_the_daily_report_is_summed_up(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/r.db")
    db.migrate()
    with db.session() as session:
        session.add(TradeRow(
            symbol="BTC-PERP", side="BUY", quantity=0.1, entry_price=100.0, exit_price=225.0, pnl=12.5, fees=0.0,
            opened_at=datetime(2026, 12, 1, 1, tzinfo=UTC), closed_at=datetime(2026, 12, 1, 3, tzinfo=UTC),
            exit_reason="take_profit", close_client_id="c1",
        ))  # fmt: skip
    path = write_daily_report(db, "2026-12-01", tmp_path / "reports", 1000.0)
    found = classify("daily_report", {"day": "2026-12-01", "path": str(path)}, logging.INFO)
    assert found is not None
    kind, _, message = found
    assert kind == "daily_report"
    assert message.startswith("Daily report 2026-12-01: 1 trades, 1 won, PnL +12.50 USD (+1.25%)")
    assert "to date 1 trades, equity 1,012.50" in message and str(path) in message


def test_notify_command(make_settings: Any, receiver: Receiver) -> None:
    assert notify_command(make_settings(notify_urls=receiver.url()), "service_down", "webhook is down") == 0
    assert receiver.texts() == ["[simulation] bluefinai: Service down | webhook is down"]
    assert notify_command(make_settings(notify_urls=receiver.url()), "no_such_kind", "x") == 1
    assert (
        notify_command(make_settings(notify_urls=receiver.url(), notify_events="lost"), "service_down", "x")
        == 0
    )
    assert notify_command(make_settings(), "service_down", "x") == 0  # nothing configured: nothing to do
    assert len(receiver.bodies) == 1
    receiver.mode = "fail"
    assert notify_command(make_settings(notify_urls=receiver.url()), "service_down", "still down") == 1

"""The engine loop's answer to each kind of failure: retry with backoff, move on, reconcile, HALT, pause."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from agent.engine.engine import Engine
from agent.engine.loop import BACKOFF_FIRST_S, MAX_FAILURES_IN_A_ROW, Failures
from shared.db import Database, DecisionRow, SignalRow
from shared.errors import Fatal, InvalidInput, Rejected, Temporary, UnknownOutcome
from shared.notify import classify
from tests.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def engine_of(client: FlaskClient) -> Engine:
    engine: Engine = client.application.extensions["engine"]
    return engine


def wait_for(condition: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(condition())


def test_temporary_failures_back_off_doubling_then_a_good_pass_starts_afresh() -> None:
    failures = Failures()
    assert failures.backoff_s() == 0.0
    waits = []
    for _ in range(4):
        failures.in_a_row += 1
        waits.append(failures.backoff_s())
    assert waits == [BACKOFF_FIRST_S, 2 * BACKOFF_FIRST_S, 4 * BACKOFF_FIRST_S, 8 * BACKOFF_FIRST_S]
    failures.in_a_row = 50
    assert failures.backoff_s() == 30.0  # capped


def test_a_temporary_failure_is_retried_after_its_backoff_and_keeps_trading(client: FlaskClient) -> None:
    engine = engine_of(client)
    assert engine.loop.failed(Temporary("read timed out")) == BACKOFF_FIRST_S
    assert engine.loop.failed(Temporary("read timed out")) == 2 * BACKOFF_FIRST_S
    assert engine.status.state == "running" and engine.guard.state == "ACTIVE"


def test_rejected_and_invalid_input_are_recorded_and_the_loop_moves_on(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    engine = engine_of(client)
    with caplog.at_level(logging.WARNING):
        assert engine.loop.failed(Rejected("reduce-only would flip")) == 0.0
        engine.loop.failed(InvalidInput([]))
    assert engine.loop.failures.last_error == "InvalidInput: "
    assert [r.getMessage() for r in caplog.records].count("engine_step_rejected") == 2
    assert engine.status.state == "running" and engine.guard.state == "ACTIVE"


def test_an_unknown_outcome_reconciles_at_once(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_of(client)
    calls: list[str] = []
    monkeypatch.setattr(engine, "reconcile", lambda: calls.append("reconcile"))
    engine.loop.failed(UnknownOutcome("order o-1 may exist"))
    assert calls == ["reconcile"]

    def unreadable() -> None:
        raise Temporary("exchange down")

    monkeypatch.setattr(engine, "reconcile", unreadable)
    engine.loop.failed(UnknownOutcome("order o-2 may exist"))
    assert engine.status.state == "paused" and "exchange down" in engine.status.reason


def test_failures_in_a_row_pause_the_engine_naming_the_last_error(client: FlaskClient) -> None:
    engine = engine_of(client)
    for _ in range(MAX_FAILURES_IN_A_ROW - 1):
        engine.loop.failed(Rejected("no"))
    assert engine.status.state == "running"
    engine.loop.failed(Temporary("gateway 502"))
    assert engine.status.state == "paused"
    assert (
        engine.status.reason == f"{MAX_FAILURES_IN_A_ROW} failures in a row, the last: Temporary: gateway 502"
    )
    body = client.get("/api/status", headers=AUTH).get_json()
    assert body["engine"]["state"] == "paused" and "gateway 502" in body["engine"]["reason"]


def test_failing_passes_of_the_running_loop_pause_it(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_of(client)

    def broken() -> set[str]:
        raise Rejected("the exchange refuses every look-up")

    monkeypatch.setattr(engine, "fold_exchange_changes", broken)
    monkeypatch.setattr(engine, "prepare", lambda: None)
    engine.start()
    try:
        assert wait_for(lambda: engine.status.state == "paused")
        assert "failures in a row" in engine.status.reason and "refuses every look-up" in engine.status.reason
        assert engine.loop_problem(120) == ""  # paused, not dead: /health stays 200
        assert client.get("/health").status_code == 200
    finally:
        engine.stop()


def test_fatal_halts_trading_alerts_and_the_api_keeps_answering(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = engine_of(client)
    raised: list[bool] = []

    def fatal_once() -> set[str]:
        if not raised:
            raised.append(True)
            raise Fatal("account frozen by the exchange")
        return set()

    monkeypatch.setattr(engine, "fold_exchange_changes", fatal_once)
    monkeypatch.setattr(engine, "prepare", lambda: None)
    with caplog.at_level(logging.ERROR):
        engine.start()
        try:
            assert wait_for(lambda: engine.guard.state == "HALTED")
            db: Database = client.application.extensions["db"]
            with db.session() as session:
                session.add(
                    SignalRow(idempotency_key="after-fatal", source="tradingview", symbol="BTC-PERP",
                              action="buy", raw={})
                )  # fmt: skip
            engine.nudge()
            assert wait_for(lambda: engine.status.signals_processed == 1)  # the loop goes on
            body = client.get("/api/status", headers=AUTH)
            assert body.status_code == 200 and client.get("/health").status_code == 200
        finally:
            engine.stop()
    trading = body.get_json()["engine"]["trading_state"]
    assert trading["state"] == "HALTED" and trading["cause"] == "fatal"
    assert "account frozen by the exchange" in trading["reason"]
    with db.session() as session:
        (decision,) = session.query(DecisionRow).all()
    assert not decision.risk_approved  # no new exposure while HALTED
    (alert,) = [r for r in caplog.records if r.getMessage() == "engine_fatal"]
    fields = alert.__dict__["fields"]  # the structured fields log_event attached
    assert alert.levelno == logging.ERROR and fields["alert"] is True
    assert classify("engine_fatal", fields, alert.levelno, alert.name) is not None  # a notification goes out


def test_a_failure_while_answering_a_failure_does_not_end_the_loop(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_of(client)

    def database_down(reason: str) -> None:
        raise OSError("database unreachable")

    monkeypatch.setattr(engine, "halt", database_down)
    assert engine.loop._answer(Fatal("account frozen")) == 1.0  # logged; the loop waits and goes on
    assert engine.loop.failures.in_a_row == 1


def test_a_backlog_is_decided_batch_after_batch_without_resting_between(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """250 signals stored and no nudge: the loop takes 100 at a time and goes straight on to the next batch;
    it rests (waits with a timeout) only once none is left. Resting until the 2 s status timer between
    batches drained a backlog at 50 signals/s."""
    engine = engine_of(client)
    db: Database = client.application.extensions["db"]
    with db.session() as session:
        fields = {"source": "tradingview", "symbol": "BTC-PERP", "action": "buy", "raw": {}}
        session.add_all(SignalRow(idempotency_key=f"backlog-{n}", **fields) for n in range(250))

    def undecided() -> int:
        with db.session() as session:
            signals = session.query(SignalRow).count()
            return signals - session.query(DecisionRow).count()

    rests: list[tuple[float, int]] = []
    wait = engine.wait

    def noted_wait(timeout_s: float) -> None:
        rests.append((timeout_s, undecided()))
        wait(timeout_s)

    monkeypatch.setattr(engine, "wait", noted_wait)
    monkeypatch.setattr(engine, "prepare", lambda: None)
    engine.decisions.waiting = False  # nobody nudged
    engine.start()
    try:
        assert wait_for(lambda: undecided() == 0)
    finally:
        engine.stop()
    while_pending = [timeout for timeout, left in rests if left > 0]
    assert len(while_pending) >= 2 and all(timeout == 0.0 for timeout in while_pending)

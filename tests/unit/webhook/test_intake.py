"""The webhook's intake: each alert stored exactly once, as the ORM would store it, waiting out another
writer's SQLite lock at a fine grain and answering "send again" only past its wait."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text

from shared.db import Database, SignalRow
from shared.models import Signal, SignalAction
from tests.conftest import free_port
from tests.postgres import fresh_schema
from webhook.intake import (
    APPLICATION_NAME,
    Intake,
    IntakeUnavailable,
    PostgresIntake,
    SqliteIntake,
    open_intake,
    signal_values,
)


def signal(key: str, **fields: object) -> Signal:
    values: dict[str, object] = {
        "idempotency_key": key, "source": "tradingview:ema", "symbol": "BTC-PERP", "action": SignalAction.BUY,
        "price": 42_000.5, "timeframe": "5", "strategy": "ema", "confidence": 0.7, "stop_loss": 41_000.0,
        "take_profit": 44_000.0, "alert_time": datetime(2026, 12, 2, 10, 30, 15, 123456, tzinfo=UTC),
        "raw": {"symbol": "BTCUSDT.P", "action": "buy", "nested": {"a": [1, 2.5, "x"]}},
    } | fields  # fmt: skip
    return Signal(**values)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'intake.db'}")
    database.migrate()
    return database


def store(intake: Intake, alert: Signal) -> tuple[int, bool]:
    """One alert through the intake's coroutine, as the webhook's event loop awaits it."""
    return asyncio.run(intake.store(alert))


def stored(db: Database, key: str) -> SignalRow:
    with db.session() as session:
        row = session.scalar(select(SignalRow).where(SignalRow.idempotency_key == key))
    assert row is not None
    return row


def test_sqlite_stores_a_signal_as_the_orm_would_and_answers_a_duplicate_with_the_first_id(
    db: Database,
) -> None:
    intake = open_intake(db, 1.0)
    assert isinstance(intake, SqliteIntake)
    before = datetime.now(UTC)
    first_id, created = store(intake, signal("tv:1"))
    assert created
    assert store(intake, signal("tv:1", price=1.0)) == (first_id, False)
    row = stored(db, "tv:1")
    assert row.id == first_id
    assert (row.source, row.symbol, row.action, row.price, row.timeframe, row.strategy) == (
        "tradingview:ema", "BTC-PERP", "buy", 42_000.5, "5", "ema",
    )  # fmt: skip
    assert (row.confidence, row.stop_loss, row.take_profit) == (0.7, 41_000.0, 44_000.0)
    assert row.alert_time == datetime(2026, 12, 2, 10, 30, 15, 123456, tzinfo=UTC)
    assert row.raw == {"symbol": "BTCUSDT.P", "action": "buy", "nested": {"a": [1, 2.5, "x"]}}
    assert before <= row.received_at <= datetime.now(UTC)  # the column's default, aware UTC
    # the same signal through the ORM (as the agent stores its own) is stored byte for byte the same
    with db.session() as session:
        session.add(SignalRow(**signal_values(signal("orm:1")), received_at=row.received_at))
    raw = sqlite3.connect(db.engine.url.database or "")
    ours, orm = (
        raw.execute("SELECT * FROM signals WHERE idempotency_key = ?", (key,)).fetchone()
        for key in ("tv:1", "orm:1")
    )
    raw.close()
    assert ours[2:] == orm[2:]  # all but the id and the key


def test_sqlite_waits_out_another_writer_and_stores_once_it_lets_go(db: Database) -> None:
    intake = open_intake(db, 2.0)
    holder = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the agent in the middle of a write transaction
    holder.execute("INSERT INTO engine_state (key, value) VALUES ('held', '1')")
    result: list[tuple[int, bool]] = []
    worker = threading.Thread(target=lambda: result.append(store(intake, signal("tv:wait"))))
    worker.start()
    time.sleep(0.45)
    assert not result  # still waiting for the lock
    released = time.monotonic()
    holder.execute("COMMIT")
    worker.join(5)
    waited = time.monotonic() - released
    assert result and result[0][1] is True
    assert stored(db, "tv:wait").id == result[0][0]
    # retried every 0.5 ms: SQLite's own busy wait would try next at 528 ms (100 ms sleeps by then), 78 ms
    # after the release
    assert waited < 0.05
    holder.close()


def test_sqlite_waits_without_blocking_the_event_loop(db: Database) -> None:
    """The loop that awaits an alert held up by the agent's lock keeps answering the other requests."""
    intake = open_intake(db, 2.0)
    holder = sqlite3.connect(db.engine.url.database or "", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    ticks: list[float] = []

    async def other_requests() -> None:
        while len(ticks) < 20:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def both() -> tuple[int, bool]:
        threading.Timer(0.3, lambda: holder.execute("COMMIT")).start()
        answer, _ = await asyncio.gather(intake.store(signal("tv:loop")), other_requests())
        return answer

    started = time.monotonic()
    assert asyncio.run(both())[1] is True
    holder.close()
    waiting = [t for t in ticks if t - started < 0.3]
    assert len(waiting) >= 15  # a blocking wait would have let at most one tick through before the commit


def test_sqlite_answers_send_again_past_its_wait_and_stores_nothing(db: Database) -> None:
    intake = open_intake(db, 0.05)
    holder = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(IntakeUnavailable, match="locked"):
        store(intake, signal("tv:late"))
    holder.execute("ROLLBACK")
    holder.close()
    with db.session() as session:
        assert session.scalar(select(SignalRow).where(SignalRow.idempotency_key == "tv:late")) is None
    assert store(intake, signal("tv:late"))[1] is True  # the resend is taken


def test_sqlite_threads_at_once_store_each_key_exactly_once(db: Database) -> None:
    intake = open_intake(db, 2.0)
    answers: dict[str, list[tuple[int, bool]]] = {}
    lock = threading.Lock()

    def send(worker: int) -> None:
        for n in range(40):
            key = f"tv:{n % 25}"  # every thread sends the same 25 keys: most are duplicates
            answer = store(intake, signal(key))
            with lock:
                answers.setdefault(key, []).append(answer)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with db.session() as session:
        rows = dict(session.execute(select(SignalRow.idempotency_key, SignalRow.id)).all())
    assert len(rows) == 25
    for key, given in answers.items():
        assert sum(created for _, created in given) == 1  # one thread stored it, all others got duplicates
        assert {signal_id for signal_id, _ in given} == {rows[key]}


def columns_of(db: Database, key: str) -> tuple[object, ...]:
    """Every column of a stored signal but the id and the key, as the database returns them."""
    table = SignalRow.__table__
    others = [c for c in table.columns if c.key not in ("id", "idempotency_key")]
    with db.engine.connect() as connection:
        return tuple(connection.execute(select(*others).where(table.c.idempotency_key == key)).one())


@pytest.fixture
def pg_db() -> Iterator[Database]:
    """A migrated PostgreSQL database of its own (a fresh schema), disposed of afterwards."""
    with fresh_schema("intake") as url:
        db = Database(url)
        db.migrate()
        yield db
        db.dispose()


def test_postgresql_stores_a_signal_as_the_orm_would_and_answers_a_duplicate_with_the_first_id(
    pg_db: Database,
) -> None:
    intake = open_intake(pg_db, 1.0)
    assert isinstance(intake, PostgresIntake)
    first_id, created = store(intake, signal("tv:pg"))
    assert created and store(intake, signal("tv:pg", price=1.0)) == (first_id, False)
    row = stored(pg_db, "tv:pg")  # read through the URL's own schema: the intake wrote there too
    assert row.id == first_id and row.price == 42_000.5
    assert row.raw["nested"] == {"a": [1, 2.5, "x"]}
    assert row.alert_time == datetime(2026, 12, 2, 10, 30, 15, 123456, tzinfo=UTC)
    with pg_db.session() as session:
        session.add(SignalRow(**signal_values(signal("orm:pg")), received_at=row.received_at))
    assert columns_of(pg_db, "tv:pg") == columns_of(pg_db, "orm:pg")


def test_postgresql_a_burst_on_a_fresh_intake_opens_one_connection(
    monkeypatch: pytest.MonkeyPatch, pg_db: Database
) -> None:
    opened: list[str] = []
    connect = psycopg.AsyncConnection.connect

    async def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append(kwargs.get("application_name", ""))
        return await connect(*args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", counted)
    intake = open_intake(pg_db, 2.0)

    async def burst() -> list[tuple[int, bool]]:
        return list(await asyncio.gather(*(intake.store(signal(f"tv:burst{n % 10}")) for n in range(40))))

    answers = asyncio.run(burst())
    assert sum(created for _, created in answers) == 10
    assert opened == [APPLICATION_NAME]  # pg_stat_activity names it


def test_postgresql_opens_a_connection_again_when_the_server_closed_it(pg_db: Database) -> None:
    intake = open_intake(pg_db, 2.0)
    assert isinstance(intake, PostgresIntake)

    async def across_a_restart() -> tuple[tuple[int, bool], tuple[int, bool]]:
        before = await intake.store(signal("tv:before"))
        connection = intake._connection
        assert connection is not None
        with pg_db.engine.connect() as admin:  # what a server restart does to our connection
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": connection.info.backend_pid})
        return before, await intake.store(signal("tv:after"))

    before, after = asyncio.run(across_a_restart())
    assert before[1] and after[1] and stored(pg_db, "tv:after").id == after[0]


def test_postgresql_that_does_not_answer_is_a_send_again_within_the_wait() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts the connection, never says a word
    port = silent.getsockname()[1]
    intake = open_intake(Database(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"), 0.5)
    started = time.monotonic()
    with pytest.raises(IntakeUnavailable):
        store(intake, signal("tv:silent"))
    assert time.monotonic() - started < 1.5
    silent.close()
    closed = open_intake(Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"), 0.5)
    with pytest.raises(IntakeUnavailable, match="OperationalError"):
        store(closed, signal("tv:refused"))

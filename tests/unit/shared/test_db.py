"""The same database tests on SQLite and on the local PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from shared.db import (
    Database,
    DecisionRow,
    EventRow,
    PaperLedgerRow,
    SignalRow,
    get_state,
    insert_later,
    set_state,
)
from shared.schema import current_revision, head_revision


def signal(key: str) -> SignalRow:
    return SignalRow(idempotency_key=key, source="tradingview", symbol="BTC-PERP", action="buy", raw={"a": 1})


def test_migrate_is_idempotent_and_records_the_revision(database: Database) -> None:
    assert database.migrate() == head_revision()
    assert database.migrate() == head_revision()
    assert current_revision(database) == head_revision()


def test_idempotency_key_is_unique(database: Database) -> None:
    with database.session() as session:
        session.add(signal("k1"))
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(signal("k1"))
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(SignalRow)) == 1


def test_a_signal_can_be_decided_only_once(database: Database) -> None:
    with database.session() as session:
        row = signal("k1")
        session.add(row)
        session.flush()
        signal_id = row.id
        session.add(
            DecisionRow(signal_id=signal_id, analyst="rules", action="hold", confidence=0, rationale="x")
        )
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(
            DecisionRow(signal_id=signal_id, analyst="rules", action="hold", confidence=0, rationale="y")
        )


def test_datetimes_come_back_aware_in_utc(database: Database) -> None:
    moment = datetime(2022, 1, 5, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    with database.session() as session:
        row = signal("k1")
        row.alert_time = moment
        session.add(row)
    with database.session() as session:
        stored = session.scalar(select(SignalRow.alert_time))
    assert stored == moment and stored is not None and stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(database: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), database.session() as session:
        row = signal("k1")
        row.alert_time = datetime(2022, 1, 5)
        session.add(row)


def test_state_round_trips(database: Database) -> None:
    with database.session() as session:
        set_state(session, "trading_state", {"state": "HALTED", "since": datetime.now(UTC).isoformat()})
    with database.session() as session:
        assert get_state(session, "trading_state")["state"] == "HALTED"
        assert get_state(session, "missing", "default") == "default"


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/wal.db")
    db.migrate()
    with db.session() as session:
        assert session.scalar(text("PRAGMA journal_mode")) == "wal"


def test_migrate_adds_new_columns_to_an_old_table(tmp_path: object) -> None:
    """A database made by schema 1 (paper_positions without leverage/margin) is upgraded in place."""
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path}/old.db"
    old = create_engine(url)
    with old.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE paper_positions (symbol VARCHAR(40) PRIMARY KEY, quantity FLOAT, entry_price FLOAT)"
            )
        )
        connection.execute(text("INSERT INTO paper_positions VALUES ('BTC-PERP', 0.5, 40000)"))
    old.dispose()
    db = Database(url)
    assert db.migrate() == head_revision()
    assert current_revision(db) == head_revision()
    with db.session() as session:
        row = session.execute(text("SELECT quantity, leverage, margin FROM paper_positions")).one()
    assert tuple(row) == (0.5, 3.0, 0.0)


def test_rows_inserted_later_are_written_in_order_at_commit_and_not_on_rollback(database: Database) -> None:
    moment = datetime(2022, 1, 1, tzinfo=UTC)
    with database.session() as session:
        for number in range(3):
            insert_later(session, EventRow, {"type": f"e{number}", "payload": {"n": number}})
        insert_later(
            session, PaperLedgerRow, {"kind": "fee", "symbol": "BTC-PERP", "amount": -1.5, "time": moment}
        )
        assert session.scalar(select(func.count()).select_from(EventRow)) == 0  # not before the commit
    with pytest.raises(RuntimeError), database.session() as session:
        insert_later(session, EventRow, {"type": "lost", "payload": {}})
        raise RuntimeError("the transaction fails")
    with database.session() as session:
        events = session.execute(select(EventRow.type, EventRow.payload).order_by(EventRow.id)).all()
        ledger = session.execute(
            select(PaperLedgerRow.kind, PaperLedgerRow.amount, PaperLedgerRow.time)
        ).all()
    assert [tuple(e) for e in events] == [("e0", {"n": 0}), ("e1", {"n": 1}), ("e2", {"n": 2})]
    assert [tuple(r) for r in ledger] == [("fee", -1.5, moment)]

"""Retention, online backups while writing, restore and VACUUM, on real SQLite files (and pg_dump)."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent.journal.upkeep import (
    PRUNED,
    Upkeep,
    apply_retention,
    backup_database,
    restore_database,
    vacuum_if_fragmented,
)
from shared.db import AiCallRow, Database, EventRow, SignalRow
from shared.errors import InvalidInput

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def fresh(tmp_path: Path, name: str = "live.db") -> Database:
    db = Database(f"sqlite:///{tmp_path / name}")
    db.migrate()
    return db


def signal(key: str) -> SignalRow:
    return SignalRow(idempotency_key=key, source="tradingview", symbol="BTC-PERP", action="buy", raw={})


def count(db: Database, model: type) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_retention_drops_old_events_and_old_prompts_but_keeps_the_spend(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    with db.session() as session:
        for age_days in (40, 10):
            created = NOW - timedelta(days=age_days)
            session.add(EventRow(type="fill", payload={"age": age_days}, created_at=created))
            session.add(AiCallRow(provider="claude", model="m", prompt_version="v", prompt_hash="h",
                                  signal_key=f"k{age_days}", prompt="a long prompt", raw_output="answer",
                                  cost_usd=0.25, input_tokens=1000, created_at=created))  # fmt: skip
    assert apply_retention(db, 30, NOW).__dict__ == {"events_deleted": 1, "ai_calls_pruned": 1}
    with db.session() as session:
        assert [e.payload["age"] for e in session.scalars(select(EventRow))] == [10]
        calls = {c.signal_key: c for c in session.scalars(select(AiCallRow))}
    assert calls["k40"].prompt == PRUNED and calls["k40"].raw_output == "" and calls["k40"].cost_usd == 0.25
    assert calls["k10"].prompt == "a long prompt"
    assert apply_retention(db, 30, NOW).__dict__ == {"events_deleted": 0, "ai_calls_pruned": 0}
    assert apply_retention(db, 0, NOW + timedelta(days=999)).__dict__ == {
        "events_deleted": 0,
        "ai_calls_pruned": 0,
    }


def test_an_online_backup_is_consistent_while_another_thread_writes(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            with db.session() as session:
                session.add(signal(f"w{n}"))
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        paths = [backup_database(db, tmp_path / "backups", 2, NOW + timedelta(seconds=i)) for i in range(3)]
    finally:
        stop.set()
        writer.join()
    kept = sorted((tmp_path / "backups").glob("bluefinai-*.db"))
    assert kept == paths[1:]  # BACKUP_KEEP=2: the oldest went
    with sqlite3.connect(kept[-1]) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT count(*) FROM signals").fetchone()[0] > 0


def test_restore_puts_the_backup_back_and_keeps_what_was_there(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    with db.session() as session:
        session.add(signal("before"))
    backup = backup_database(db, tmp_path / "backups", 5, NOW)
    with db.session() as session:
        session.add(signal("after"))
    aside = restore_database(db, backup, NOW)
    with db.session() as session:
        assert list(session.scalars(select(SignalRow.idempotency_key))) == ["before"]
    assert aside is not None and aside.exists()
    with sqlite3.connect(aside) as previous:
        assert previous.execute("SELECT count(*) FROM signals").fetchone()[0] == 2
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(InvalidInput, match="not a sound SQLite database"):
        restore_database(db, junk, NOW)
    assert count(db, SignalRow) == 1  # a refused restore changes nothing


def test_vacuum_runs_only_when_a_fifth_of_the_file_is_free(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    assert not vacuum_if_fragmented(db)
    with db.session() as session:
        session.add_all(EventRow(type="x", payload={"blob": "y" * 2000}, created_at=NOW) for _ in range(500))
    with db.session() as session:
        session.query(EventRow).delete()
    size_before = (tmp_path / "live.db").stat().st_size
    assert vacuum_if_fragmented(db)
    db.dispose()
    with sqlite3.connect(tmp_path / "live.db") as check:
        check.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert (tmp_path / "live.db").stat().st_size < size_before / 2


def test_upkeep_waits_one_interval_after_the_newest_backup(tmp_path: Path) -> None:
    db = fresh(tmp_path)
    upkeep = Upkeep(db, retention_days=30, interval_hours=24, folder=tmp_path / "backups", keep=3)
    assert upkeep.first_delay_s(NOW) == 0.0  # no backup yet: at once
    upkeep.run_once(datetime.now(UTC))
    assert len(list((tmp_path / "backups").glob("bluefinai-*.db"))) == 1
    assert 24 * 3600 - 60 < upkeep.first_delay_s(datetime.now(UTC)) <= 24 * 3600


def test_postgresql_is_backed_up_and_restored_with_pg_dump(postgres_url: str, tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    db = Database(postgres_url)
    db.migrate()
    with db.session() as session:
        session.add(signal("pg-before"))
    backup = backup_database(db, tmp_path, 3, NOW)
    assert backup.suffix == ".pgdump" and backup.stat().st_size > 0
    with db.session() as session:
        session.add(signal("pg-after"))
    restore_database(db, backup, NOW)
    with db.session() as session:
        assert list(session.scalars(select(SignalRow.idempotency_key))) == ["pg-before"]
    db.dispose()

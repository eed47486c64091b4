"""Keeping the database small and safe: retention, online backups, VACUUM, restore.

- Retention (RETENTION_DAYS): dashboard events older than that are deleted; AI calls keep their
  metadata (provider, model, tokens, cost, latency: the spend history) but lose the prompt and the raw
  answer, the bulk of the database. Orders, fills, trades, positions and funding are the books: never.
- Backups (BACKUP_INTERVAL_HOURS, BACKUP_KEEP, BACKUP_DIR): SQLite's online backup API copies the live
  database page by page while the services keep writing; PostgreSQL is dumped with ``pg_dump``.
- VACUUM after retention, when a fifth of the file is free pages.
- ``restore``: the current database is copied aside first, then the backup is copied in (online, for
  SQLite) and the schema brought to head.

``Upkeep`` runs all of it in the agent on a thread of its own (never in the trading loop), every
BACKUP_INTERVAL_HOURS, timed from the newest backup so a restart does not back up again at once.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import subprocess
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, text, update
from sqlalchemy.exc import SQLAlchemyError

from shared.db import AiCallRow, Database, EventRow
from shared.errors import FieldProblem, InvalidInput
from shared.logs import log_event

logger = logging.getLogger(__name__)
VACUUM_FREE_SHARE = 0.2
PRUNED = "(removed by retention)"


@dataclass(frozen=True)
class RetentionResult:
    events_deleted: int
    ai_calls_pruned: int


def apply_retention(db: Database, days: int, now: datetime) -> RetentionResult:
    """Delete old events and strip old AI prompts/answers; nothing when ``days`` is 0."""
    if days <= 0:
        return RetentionResult(0, 0)
    cutoff = now - timedelta(days=days)
    with db.session() as session:
        events = session.execute(delete(EventRow).where(EventRow.created_at < cutoff))
        calls = session.execute(
            update(AiCallRow)
            .where(AiCallRow.created_at < cutoff, AiCallRow.prompt != PRUNED)
            .values(prompt=PRUNED, raw_output="", parsed={})
        )
    return RetentionResult(int(events.rowcount or 0), int(calls.rowcount or 0))  # type: ignore[attr-defined]


def sqlite_path(db: Database) -> Path | None:
    path = db.engine.url.database
    return Path(path) if db.is_sqlite and path and path != ":memory:" else None


def backup_database(db: Database, folder: Path, keep: int, now: datetime) -> Path:
    """One consistent copy of the database in ``folder``; only the newest ``keep`` are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    source = sqlite_path(db)
    if source is not None:
        target = folder / f"bluefinai-{stamp}.db"
        partial = target.with_suffix(".db.partial")
        with sqlite3.connect(source, timeout=30) as live, sqlite3.connect(partial) as copy:
            live.backup(copy, pages=1024, sleep=0.005)  # in steps: writers are never held for long
        partial.replace(target)
        pattern = "bluefinai-*.db"
    elif db.is_sqlite:
        raise InvalidInput([FieldProblem("DATABASE_URL", "an in-memory database cannot be backed up")])
    else:
        target = folder / f"bluefinai-{stamp}.pgdump"
        _pg_tool("pg_dump", db, "--format=custom", f"--file={target}")
        pattern = "bluefinai-*.pgdump"
    for old in sorted(folder.glob(pattern))[:-keep]:
        old.unlink()
    return target


def restore_database(db: Database, backup: Path, now: datetime) -> Path | None:
    """Replace the database's contents with ``backup``; the previous contents are kept beside it (SQLite,
    returned) and the schema is brought to head. Stop the services first."""
    if not backup.is_file():
        raise InvalidInput([FieldProblem("backup", f"not a file: {backup}")])
    target = sqlite_path(db)
    if db.is_sqlite and target is None:
        raise InvalidInput([FieldProblem("DATABASE_URL", "an in-memory database cannot be restored")])
    if target is not None:
        try:
            with sqlite3.connect(f"file:{backup}?mode=ro", uri=True) as check:
                check.execute("SELECT count(*) FROM sqlite_master").fetchone()
                ok = check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError:
            ok = False
        if not ok:
            raise InvalidInput([FieldProblem("backup", f"not a sound SQLite database: {backup}")])
        aside: Path | None = None
        if target.exists():
            aside = target.with_name(f"{target.name}.before-restore-{now.strftime('%Y%m%d-%H%M%S')}")
            with sqlite3.connect(target, timeout=30) as live, sqlite3.connect(aside) as copy:
                live.backup(copy)
        db.dispose()
        with sqlite3.connect(backup) as source, sqlite3.connect(target, timeout=30) as live:
            source.backup(live)
        db.migrate()
        return aside
    _pg_tool("pg_restore", db, "--clean", "--if-exists", "--no-owner", str(backup))
    db.migrate()
    return None


def vacuum_if_fragmented(db: Database) -> bool:
    """VACUUM a SQLite database whose free pages are a fifth of it or more; True when it did."""
    if sqlite_path(db) is None:
        return False
    with db.engine.connect() as connection:
        pages = int(connection.execute(text("PRAGMA page_count")).scalar() or 0)
        free = int(connection.execute(text("PRAGMA freelist_count")).scalar() or 0)
        if pages == 0 or free / pages < VACUUM_FREE_SHARE:
            return False
        connection.execute(text("VACUUM"))
    return True


def _pg_tool(tool: str, db: Database, *args: str) -> None:
    """Run pg_dump / pg_restore against the database (and only its schema, when the URL names one)."""
    binary = shutil.which(tool)
    if binary is None:
        raise InvalidInput([FieldProblem("DATABASE_URL", f"{tool} is not installed (postgresql-client)")])
    url = db.engine.url
    dsn = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    options = dict(url.query).get("options")
    command = [binary, *args, f"--dbname={dsn}"]
    if isinstance(options, str) and "search_path=" in options:
        command.append(f"--schema={options.split('search_path=')[1]}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{tool} failed: {result.stderr.strip()[-500:]}")


class Upkeep:
    """Retention, backup and VACUUM every ``interval_hours`` on a daemon thread of its own."""

    def __init__(
        self, db: Database, *, retention_days: int, interval_hours: float, folder: Path, keep: int
    ) -> None:
        self.db, self.retention_days, self.folder, self.keep = db, retention_days, folder, keep
        self.interval_s = interval_hours * 3600
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval_s <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="upkeep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def first_delay_s(self, now: datetime) -> float:
        """Until the next run: one interval after the newest backup (at once when there is none)."""
        backups = sorted(self.folder.glob("bluefinai-*.*")) if self.folder.exists() else []
        if not backups:
            return 0.0
        newest = datetime.fromtimestamp(backups[-1].stat().st_mtime, UTC)
        return max(0.0, self.interval_s - (now - newest).total_seconds())

    def run_once(self, now: datetime) -> None:
        retained = apply_retention(self.db, self.retention_days, now)
        in_memory = self.db.is_sqlite and sqlite_path(self.db) is None
        path = None if in_memory else backup_database(self.db, self.folder, self.keep, now)
        vacuumed = vacuum_if_fragmented(self.db)
        log_event(logger, "upkeep_done", events_deleted=retained.events_deleted,
                  ai_calls_pruned=retained.ai_calls_pruned, backup=str(path) if path else None,
                  vacuumed=vacuumed)  # fmt: skip

    def _run(self) -> None:
        delay = self.first_delay_s(datetime.now(UTC))
        while not self._stop.wait(delay):
            try:
                self.run_once(datetime.now(UTC))
            except (OSError, RuntimeError, InvalidInput, sqlite3.Error, SQLAlchemyError) as exc:
                log_event(logger, "upkeep_failed", logging.ERROR, error=str(exc))
            delay = self.interval_s

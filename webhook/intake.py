"""Storing an accepted alert exactly once (a unique idempotency key), as cheaply as the database allows.

``open_intake(db)`` gives the writer for the database. Its ``store`` is a coroutine: the webhook answers
from an event loop, and nothing here blocks the loop for longer than one statement.

- SQLite: each thread (the event loop's) keeps one connection of its own in autocommit and runs one
  prepared ``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`` inline (about 0.2 ms), so
  the write lock is held for that statement only. It waits for another writer (the agent's transaction)
  itself, without blocking the loop, trying again every ``RETRY_S`` until ``wait_s``: SQLite's own busy
  wait sleeps 1, 2, 5, 10, 15, 20 ms ... between tries, so an alert that met a 2 ms transaction of the
  agent's waited 3 to 8 ms, and one that met two in a row tens of ms. Values go through the columns' own
  type processors, so a row is stored exactly as the ORM stores it.
- Any other database (PostgreSQL: row locks, no writer waits on another's insert): a Core insert in its
  own short transaction on a worker thread (a network round trip must not stall the loop), a duplicate key
  answered from the first signal's row.

Both raise ``IntakeUnavailable`` (send again) when the database cannot take the alert.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from shared.db import Database, SignalRow
from shared.errors import Temporary
from shared.models import Signal

RETRY_S = 0.0005  # between tries while another connection holds SQLite's write lock


class IntakeUnavailable(Temporary):
    """The database could not take the alert now: the sender should send it again."""


class Intake(Protocol):
    async def store(self, signal: Signal) -> tuple[int, bool]:
        """Insert the signal; (its id, True), or for a duplicate key (the first signal's id, False)."""
        ...


def signal_values(signal: Signal) -> dict[str, Any]:
    return {
        "idempotency_key": signal.idempotency_key, "source": signal.source, "symbol": signal.symbol,
        "action": signal.action.value, "price": signal.price, "timeframe": signal.timeframe,
        "strategy": signal.strategy, "confidence": signal.confidence, "stop_loss": signal.stop_loss,
        "take_profit": signal.take_profit, "alert_time": signal.alert_time, "raw": signal.raw,
    }  # fmt: skip


def open_intake(db: Database, wait_s: float) -> Intake:
    return SqliteIntake(db, wait_s) if db.is_sqlite else CoreIntake(db)


class CoreIntake:
    """A plain Core insert in its own short transaction (no ORM unit of work); compiled once, cached."""

    INSERT = insert(SignalRow).returning(SignalRow.id)

    def __init__(self, db: Database) -> None:
        self._db = db

    async def store(self, signal: Signal) -> tuple[int, bool]:
        return await asyncio.to_thread(self._store, signal)

    def _store(self, signal: Signal) -> tuple[int, bool]:
        try:
            try:
                with self._db.engine.begin() as connection:
                    return int(connection.execute(self.INSERT, signal_values(signal)).scalar_one()), True
            except IntegrityError:
                with self._db.engine.connect() as connection:
                    query = select(SignalRow.id).where(SignalRow.idempotency_key == signal.idempotency_key)
                    existing = connection.scalar(query)
                if existing is None:
                    raise
                return int(existing), False
        except SQLAlchemyError as exc:
            raise IntakeUnavailable(f"{type(exc).__name__}: {exc}") from exc


class SqliteIntake:
    """See the module docstring."""

    def __init__(self, db: Database, wait_s: float) -> None:
        self._path = db.engine.url.database or ""
        self._wait_s = wait_s
        dialect = db.engine.dialect
        table = SignalRow.__table__
        name = SignalRow.__tablename__
        self._columns = [column for column in table.columns if column.key != "id"]
        self._processors: list[tuple[str, Callable[[Any], Any] | None]] = [
            (column.key, column.type.dialect_impl(dialect).bind_processor(dialect))
            for column in self._columns
        ]
        names = ", ".join(column.name for column in self._columns)
        marks = ", ".join("?" for _ in self._columns)
        self._insert = (
            f"INSERT INTO {name} ({names}) VALUES ({marks}) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
        )
        self._existing = f"SELECT id FROM {name} WHERE idempotency_key = ?"
        self._local = threading.local()

    async def store(self, signal: Signal) -> tuple[int, bool]:
        parameters = self._parameters(signal)
        deadline = time.monotonic() + self._wait_s
        while True:
            try:
                return self._insert_once(parameters, signal.idempotency_key)
            except sqlite3.Error as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise IntakeUnavailable(f"{type(exc).__name__}: {exc}") from exc
            await asyncio.sleep(RETRY_S)

    def _parameters(self, signal: Signal) -> tuple[Any, ...]:
        values = signal_values(signal)
        for column in self._columns:  # the columns' defaults, as the ORM would fill them (received_at)
            default = column.default
            if column.key not in values and default is not None:
                values[column.key] = default.arg if default.is_scalar else default.arg(None)
        return tuple(
            process(values[key]) if process is not None else values[key] for key, process in self._processors
        )

    def _insert_once(self, parameters: tuple[Any, ...], key: str) -> tuple[int, bool]:
        connection = self._connection()
        # fetchall: the statement runs to its end (and lets go of the write lock) before we go on
        inserted = connection.execute(self._insert, parameters).fetchall()
        if inserted:
            return int(inserted[0][0]), True
        existing = connection.execute(self._existing, (key,)).fetchall()
        if not existing:  # a key taken and gone at once: nothing deletes signals
            raise IntakeUnavailable(f"signal {key} neither stored nor found")
        return int(existing[0][0]), False

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # autocommit (each statement its own transaction), and no busy wait of SQLite's own: ``store``
            # waits; the pragmas as every connection of ``shared.db`` has them
            connection = sqlite3.connect(self._path, isolation_level=None, timeout=0)
            try:
                for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                    connection.execute(f"PRAGMA {pragma}").fetchall()
            except sqlite3.Error:
                connection.close()
                raise
            self._local.connection = connection
        return connection


def _busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock (SQLITE_BUSY or SQLITE_LOCKED, extended codes included)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

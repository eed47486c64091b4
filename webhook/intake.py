"""Storing an accepted alert exactly once (a unique idempotency key), as cheaply as the database allows.

``open_intake(db)`` gives the writer for the database. Its ``store`` is a coroutine: the webhook answers
from an event loop, and nothing here blocks the loop for longer than one statement. Both writers run one
prepared ``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`` on a connection of their own
in autocommit, with the values through the columns' own type processors, so a row is stored exactly as the
ORM stores it; a duplicate key is answered with the first signal's id.

- SQLite: each thread (the event loop's) keeps one connection, and the insert runs inline (about 0.2 ms),
  so the write lock is held for that statement only. It waits for another writer (the agent's
  transaction) itself, without blocking the loop, trying again every ``RETRY_S`` until ``wait_s``:
  SQLite's own busy wait sleeps 1, 2, 5, 10, 15, 20 ms ... between tries, so an alert that met a 2 ms
  transaction of the agent's waited 3 to 8 ms, and one that met two in a row tens of ms.
- PostgreSQL (row locks: no writer waits on another's insert): psycopg's own asyncio connection, one per
  event loop, awaited on the loop. SQLAlchemy's Core insert on a worker thread cost 2.6 ms of CPU per
  alert, four times SQLite's. A connection that broke since the last alert is opened again once; a server
  that does not answer within ``wait_s`` is a refusal.

Both raise ``IntakeUnavailable`` (send again) when the database cannot take the alert.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
from sqlalchemy import JSON
from sqlalchemy.engine import Dialect

from shared.db import Database, SignalRow
from shared.errors import Temporary
from shared.models import Signal

RETRY_S = 0.0005  # between tries while another connection holds SQLite's write lock


APPLICATION_NAME = "bluefinai-webhook"  # PostgreSQL: how pg_stat_activity names our connections


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
    return SqliteIntake(db, wait_s) if db.is_sqlite else PostgresIntake(db, wait_s)


class SignalInsert:
    """The prepared insert of a signal row for one dialect: its SQL (``mark`` the placeholder, JSON columns
    cast where ``cast_json``), the existing-key query, and the parameters of a signal as the ORM binds
    them."""

    def __init__(self, dialect: Dialect, mark: str, cast_json: bool = False) -> None:
        name = SignalRow.__tablename__
        self.columns = [column for column in SignalRow.__table__.columns if column.key != "id"]
        self._processors: list[tuple[str, Callable[[Any], Any] | None]] = [
            (column.key, column.type.dialect_impl(dialect).bind_processor(dialect)) for column in self.columns
        ]
        names = ", ".join(column.name for column in self.columns)
        marks = ", ".join(
            f"{mark}::{column.type.compile(dialect)}" if cast_json and isinstance(column.type, JSON) else mark
            for column in self.columns
        )
        conflict = "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
        self.insert = f"INSERT INTO {name} ({names}) VALUES ({marks}) {conflict}"
        self.existing = f"SELECT id FROM {name} WHERE idempotency_key = {mark}"

    def parameters(self, signal: Signal) -> tuple[Any, ...]:
        values = signal_values(signal)
        for column in self.columns:  # the columns' defaults, as the ORM would fill them (received_at)
            default = column.default
            if column.key not in values and default is not None:
                values[column.key] = default.arg if default.is_scalar else default.arg(None)
        return tuple(
            process(values[key]) if process is not None else values[key] for key, process in self._processors
        )


class PostgresIntake:
    """See the module docstring."""

    def __init__(self, db: Database, wait_s: float) -> None:
        self._conninfo = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._wait_s = wait_s
        self._sql = SignalInsert(db.engine.dialect, "%s", cast_json=True)
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening = asyncio.Lock()

    async def store(self, signal: Signal) -> tuple[int, bool]:
        parameters = self._sql.parameters(signal)
        try:
            async with asyncio.timeout(self._wait_s):
                try:
                    return await self._insert_once(parameters, signal.idempotency_key)
                except psycopg.OperationalError:  # the server closed it (a restart): one fresh connection
                    self._drop()
                    return await self._insert_once(parameters, signal.idempotency_key)
        except (psycopg.Error, TimeoutError) as exc:
            self._drop()
            raise IntakeUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _insert_once(self, parameters: tuple[Any, ...], key: str) -> tuple[int, bool]:
        connection = await self._connected()
        inserted = await (await connection.execute(self._sql.insert, parameters)).fetchone()
        if inserted is not None:
            return int(inserted[0]), True
        existing = await (await connection.execute(self._sql.existing, (key,))).fetchone()
        if existing is None:  # a key taken and gone at once: nothing deletes signals
            raise IntakeUnavailable(f"signal {key} neither stored nor found")
        return int(existing[0]), False

    async def _connected(self) -> psycopg.AsyncConnection[Any]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a test's new loop: what was opened on another cannot be awaited here
            self._drop()
            self._loop, self._opening = loop, asyncio.Lock()
        if self._connection is None:
            async with self._opening:  # the alerts of a burst that find none wait for one, not open one each
                if self._connection is None:
                    self._connection = await psycopg.AsyncConnection.connect(
                        self._conninfo, autocommit=True, connect_timeout=max(1, int(self._wait_s)),
                        application_name=APPLICATION_NAME,
                    )  # fmt: skip
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.pgconn.finish()  # closes the socket now, from any loop
            self._connection = None


class SqliteIntake:
    """See the module docstring."""

    def __init__(self, db: Database, wait_s: float) -> None:
        self._path = db.engine.url.database or ""
        self._wait_s = wait_s
        self._sql = SignalInsert(db.engine.dialect, "?")
        self._local = threading.local()

    async def store(self, signal: Signal) -> tuple[int, bool]:
        parameters = self._sql.parameters(signal)
        deadline = time.monotonic() + self._wait_s
        while True:
            try:
                return self._insert_once(parameters, signal.idempotency_key)
            except sqlite3.Error as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise IntakeUnavailable(f"{type(exc).__name__}: {exc}") from exc
            await asyncio.sleep(RETRY_S)

    def _insert_once(self, parameters: tuple[Any, ...], key: str) -> tuple[int, bool]:
        connection = self._connection()
        # fetchall: the statement runs to its end (and lets go of the write lock) before we go on
        inserted = connection.execute(self._sql.insert, parameters).fetchall()
        if inserted:
            return int(inserted[0][0]), True
        existing = connection.execute(self._sql.existing, (key,)).fetchall()
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

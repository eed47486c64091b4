"""The database schema's version, with alembic: ``upgrade`` brings a database to the head revision, once.

``bluefinai db upgrade`` (and ``make run``, and the compose ``migrate`` job) call ``upgrade``; the services
only ``require_current`` at start and refuse, with the command to run, when the schema is behind. Two
upgrades started at once are serialised by a lock (PostgreSQL: an advisory lock; SQLite: a lock file
beside the database), so the second finds the work done.

An empty database is built from the models and stamped at head (alembic's recommended way; a test
proves the migrations build the same schema). A database from before alembic (it has the old
``schema_version`` table) is brought up by the additive path it always used, then stamped.

Rule for every revision: additive only (new tables, new columns with a server default, wider columns),
never a rename or a drop in the same release that stops using it. ``./start_production.sh --update``
upgrades the schema before it restarts the services one at a time, and leaves an agent with open
positions running on the previous code until the trader says so: that agent must keep working on the
new schema.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from shared.config import redact_url
from shared.db import Base, Database
from shared.errors import ConfigError
from shared.logs import log_event

logger = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK_KEY = 0x42_4C_55_45  # "BLUE": any constant both upgraders agree on


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "no migrations in shared/migrations/versions"
    return head


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _exclusive(db: Database, connection: Connection) -> Iterator[None]:
    if db.is_sqlite:
        path = db.engine.url.database
        if not path or path == ":memory:":
            yield  # a private in-memory database: nobody else can migrate it
            return
        with open(f"{path}.migrate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    connection.commit()
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
        connection.commit()


def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the schema to head under the lock; (revision before, revision after)."""
    with db.engine.connect() as lock_connection, _exclusive(db, lock_connection):
        before = current_revision(db)
        head = head_revision()
        if before == head:
            return before, head
        with db.engine.begin() as connection:
            tables = set(inspect(connection).get_table_names())
            config = _config(connection)
            if before is None and not tables & {t.name for t in Base.metadata.sorted_tables}:
                Base.metadata.create_all(connection)
                command.stamp(config, "head")
            elif before is None:
                db.legacy_catch_up(connection)
                command.stamp(config, "head")
            else:
                command.upgrade(config, "head")
        return before, head


def require_current(db: Database) -> None:
    """Refuse to start (ConfigError, one line) unless the database answers and its schema is at head."""
    try:
        current = current_revision(db)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        raise ConfigError([f"DATABASE_URL: cannot use {redact_url(db.url)}: {reason}"]) from None
    head = head_revision()
    if current != head:
        where = "empty" if current is None else f"at revision {current}"
        line = f"DATABASE_URL: the database schema is {where}, this version needs {head}"
        raise ConfigError([f"{line}: run `bluefinai db upgrade`"])


def refuse_unless_schema_current(db: Database) -> None:
    """A service's start: ``require_current``, its refusal also logged as one ``refusing_to_start`` line."""
    try:
        require_current(db)
    except ConfigError as exc:
        for line in exc.problems:
            log_event(logger, "refusing_to_start", logging.CRITICAL, problem=line)
        raise

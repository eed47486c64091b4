"""The schema's revision with alembic: built once, the same whichever way it is built, refused when behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, select, text

from shared.db import Base, Database, SignalRow
from shared.errors import ConfigError
from shared.schema import _config, current_revision, head_revision, require_current, upgrade

ROOT = Path(__file__).resolve().parents[3]


def test_the_migrations_build_exactly_the_schema_of_the_models(database: Database) -> None:
    """``upgrade`` builds an empty database from the models; the migrations must build the same."""
    with database.engine.begin() as connection:
        Base.metadata.drop_all(connection)
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        command.upgrade(_config(connection), "head")
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert current_revision(database) == head_revision()


def test_services_refuse_a_schema_that_is_not_current(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(ConfigError) as caught:
        require_current(db)
    assert caught.value.problems == [
        f"DATABASE_URL: the database schema is empty, this version needs {head_revision()}: "
        "run `bluefinai db upgrade`"
    ]
    assert upgrade(db) == (None, head_revision())
    assert upgrade(db) == (head_revision(), head_revision())
    require_current(db)


def test_a_database_from_before_alembic_is_caught_up_and_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as connection:
        connection.execute(text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO schema_version VALUES (4)"))
        connection.execute(text(
            "CREATE TABLE signals (id INTEGER PRIMARY KEY, idempotency_key VARCHAR(160) UNIQUE, source VARCHAR(40),"
            " symbol VARCHAR(40), action VARCHAR(10), received_at DATETIME, raw JSON)"
        ))  # fmt: skip
        connection.execute(text(
            "INSERT INTO signals (idempotency_key, source, symbol, action, received_at, raw) "
            "VALUES ('k', 'tradingview', 'BTC-PERP', 'buy', '2026-01-01 00:00:00', '{}')"
        ))  # fmt: skip
    old.dispose()
    db = Database(url)
    assert upgrade(db) == (None, head_revision())
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(SignalRow)) == 1
        assert session.scalar(select(SignalRow.strategy)) is None  # a column added by the catch-up


def _concurrent_upgrades(env: dict[str, str], count: int) -> list[str]:
    command_line = [sys.executable, "-m", "bluefinai.cli", "db", "upgrade"]
    processes = [
        subprocess.Popen(
            command_line, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    return outputs


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_concurrent_starts_migrate_once(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = (
        f"sqlite:///{tmp_path / 'shared.db'}" if kind == "sqlite" else request.getfixturevalue("postgres_url")
    )
    env = {**os.environ, "BLUEFINAI_ENV_FILE": "", "DATABASE_URL": url, "DATA_DIR": str(tmp_path)}
    outputs = _concurrent_upgrades(env, 4)
    upgraded = [o for o in outputs if o.startswith("schema upgraded")]
    assert upgraded == [f"schema upgraded: empty -> {head_revision()}"], outputs
    assert outputs.count(f"schema at {head_revision()} (already)") == 3
    db = Database(url)
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    db.dispose()

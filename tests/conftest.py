"""Shared fixtures: isolated settings, databases on SQLite and on the local PostgreSQL server."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from shared.config import Settings, load_settings
from shared.db import Database
from tests.postgres import PG_ADMIN_URL, fresh_schema

# No test reads a developer's .env.
os.environ["BLUEFINAI_ENV_FILE"] = ""

REAL_CANDLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"
TOKEN = "test-api-token-0123456789"
PASSPHRASE = "test-passphrase-0123456789"


def wait_for(check: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy (returned) or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # any failure to connect means: not available here
        return False


@pytest.fixture
def make_settings(tmp_path: Path) -> Any:
    def _make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "database_url": f"sqlite:///{tmp_path / 'test.db'}",
            "api_token": TOKEN,
            "webhook_passphrase": PASSPHRASE,
        }
        values.update(overrides)
        settings = load_settings(**values)
        db = Database(settings.database_url)
        db.migrate()  # what `bluefinai db upgrade` does before the services start
        db.dispose()
        return settings

    return _make


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL 'test' database, dropped afterwards."""
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable in CI")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    with fresh_schema() as url:
        yield url


def open_database(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> Iterator[Database]:
    """A migrated database of ``kind`` (sqlite: a file in tmp_path; postgresql: a schema of its own)."""
    url = (
        f"sqlite:///{tmp_path / 'db.sqlite'}" if kind == "sqlite" else request.getfixturevalue("postgres_url")
    )
    db = Database(url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The same test on SQLite and on PostgreSQL."""
    yield from open_database(request, tmp_path, request.param)

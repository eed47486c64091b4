"""The webhook app as the tests drive it: Starlette's test client over the real ASGI app, from an address."""

from __future__ import annotations

from starlette.testclient import TestClient

from shared.config import Settings
from shared.db import Database
from webhook.app import create_app


def webhook_client(settings: Settings, remote: str = "127.0.0.1") -> TestClient:
    """A client whose requests come from ``remote`` (the connection's address: nginx's on this machine by
    default)."""
    return TestClient(create_app(settings), client=(remote, 50_000))


def client_db(client: TestClient) -> Database:
    db: Database = client.app.state.db  # type: ignore[attr-defined]
    return db

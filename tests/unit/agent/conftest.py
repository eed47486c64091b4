"""Fixtures of the agent's tests."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from agent.api.app import create_app
from agent.engine.engine import Engine


@pytest.fixture
def client(make_settings: Any) -> FlaskClient:
    """The agent API through Flask's test client (engine built and reconciled, not started: tests drive it)."""
    app = create_app(make_settings(socket_url="http://127.0.0.1:9"), start_engine=False)
    engine: Engine = app.extensions["engine"]
    engine.prepare()
    return app.test_client()

"""Fixtures of the agent's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from agent.api.app import create_app
from agent.engine.engine import Engine
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.chat_api import FakeChat


def prepared_app(settings: Any) -> Flask:
    """The agent's app with its engine built and reconciled, not started: the test drives it (a second call
    on the same database is a restart)."""
    app = create_app(settings, start_engine=False)
    engine: Engine = app.extensions["engine"]
    engine.prepare()
    return app


@pytest.fixture
def client(make_settings: Any) -> FlaskClient:
    """The agent API through Flask's test client (engine built and reconciled, not started: tests drive it)."""
    return prepared_app(make_settings(socket_url="http://127.0.0.1:9")).test_client()


@pytest.fixture(scope="module")
def claude_api() -> Iterator[FakeAnthropic]:
    """The fake Anthropic API (real HTTP on 127.0.0.1), one per test module."""
    fake = FakeAnthropic()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def chat_api() -> Iterator[FakeChat]:
    """The fake chat-completions API (Perplexity, OpenAI-compatible), one per test module."""
    fake = FakeChat()
    yield fake
    fake.stop()

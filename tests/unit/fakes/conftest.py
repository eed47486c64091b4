"""Fixtures for the fake Bluefin Pro's tests: a running fake per test, logged-in sessions, the spec."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.bluefin_pro import FakeBluefinPro
from tests.unit.fakes.bluefin_sdk import Session, Spec


@pytest.fixture
def fake() -> Iterator[FakeBluefinPro]:
    server = FakeBluefinPro()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def session(fake: FakeBluefinPro) -> Iterator[Session]:
    opened = Session.open(fake.url, fake.ids_id)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def spec() -> Spec:
    return Spec()

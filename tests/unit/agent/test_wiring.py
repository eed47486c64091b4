"""MARKET_DATA_SOURCE: which feed the agent gets, and that the choice is never silent."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.wiring import build_feeds
from shared.errors import Temporary
from shared.marketdata.bluefin import BluefinFeed
from tests.conftest import free_port
from tests.fakes.bluefin_gateway import FakeBluefinGateway


@pytest.fixture
def gateway() -> Iterator[FakeBluefinGateway]:
    fake = FakeBluefinGateway()
    fake.start()
    yield fake
    fake.stop()


def stop_hubs(feeds: list[Any]) -> None:
    for feed in feeds:
        if isinstance(feed, BluefinFeed):
            feed.hub.stop()
            break


def test_auto_uses_bluefin_when_it_answers(make_settings: Any, gateway: FakeBluefinGateway) -> None:
    feeds = build_feeds(make_settings(market_data_source="auto", bluefin_api="v2", bluefin_network=gateway.url))
    try:
        assert [f.source for f in feeds] == ["bluefin"]
        assert len(feeds[0].history(20)) == 20
    finally:
        stop_hubs(feeds)


def test_auto_falls_back_to_replay_quickly_and_says_so(
    make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(market_data_source="auto", bluefin_network=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        feeds = build_feeds(settings)
    assert [f.source for f in feeds] == ["replay"]
    assert time.monotonic() - started < settings.auto_probe_timeout_s + 2
    assert any(r.getMessage() == "bluefin_unavailable_falling_back" for r in caplog.records)


def test_auto_without_a_replay_file_is_synthetic(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(
        market_data_source="auto",
        bluefin_network=f"http://127.0.0.1:{free_port()}",
        replay_file=tmp_path / "none.csv",
    )
    assert [f.source for f in build_feeds(settings)] == ["synthetic"]


def test_explicit_bluefin_does_not_fall_back(make_settings: Any) -> None:
    with pytest.raises(Temporary):
        build_feeds(
            make_settings(market_data_source="bluefin", bluefin_network=f"http://127.0.0.1:{free_port()}")
        )

"""MARKET_DATA_SOURCE: which feed the agent gets, and that the choice is never silent."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.wiring import build_feeds
from shared.errors import ConfigError, Temporary
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
    feeds = build_feeds(
        make_settings(market_data_source="auto", bluefin_api="v2", bluefin_network=gateway.url)
    )
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


def test_a_named_replay_file_that_is_missing_stops_the_start(make_settings: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings(market_data_source="auto", replay_file=tmp_path / "none.csv")
    assert caught.value.problems == [f"REPLAY_FILE: not found: {tmp_path / 'none.csv'}"]


def test_explicit_bluefin_does_not_fall_back(make_settings: Any) -> None:
    with pytest.raises(Temporary):
        build_feeds(
            make_settings(market_data_source="bluefin", bluefin_network=f"http://127.0.0.1:{free_port()}")
        )


@pytest.fixture
def pro_fake() -> Iterator[Any]:
    from tests.fakes.bluefin_pro import FakeBluefinPro

    fake = FakeBluefinPro(symbols=("BTC-PERP",))
    fake.start()
    yield fake
    fake.stop()


def test_bluefin_pro_is_the_default_and_auto_finds_it(make_settings: Any, pro_fake: Any) -> None:
    from shared.marketdata.bluefin_pro import BluefinProFeed

    settings = make_settings(market_data_source="auto", bluefin_network=pro_fake.url)
    assert settings.bluefin_api == "pro"
    feeds = build_feeds(settings)
    try:
        assert [type(f) for f in feeds] == [BluefinProFeed] and feeds[0].source == "bluefin"
        assert len(feeds[0].history(20)) == 20
    finally:
        feeds[0].hub.stop()  # type: ignore[attr-defined]


def test_a_market_bluefin_pro_does_not_list_is_refused(make_settings: Any, pro_fake: Any) -> None:
    with pytest.raises(ConfigError, match="XRP-PERP not listed by Bluefin Pro"):
        build_feeds(make_settings(market_data_source="bluefin", symbols="BTC-PERP,XRP-PERP",
                                  bluefin_network=pro_fake.url))  # fmt: skip


KEY = "0x" + "11" * 32


def test_real_mode_refuses_replayed_synthetic_and_fallback_prices(make_settings: Any, tmp_path: Path) -> None:
    for source in ("replay", "synthetic"):
        with pytest.raises(ConfigError) as refused:
            make_settings(trading_mode="real", bluefin_private_key=KEY, market_data_source=source)
        (line,) = refused.value.problems
        assert f"refuses MARKET_DATA_SOURCE={source}" in line
    with pytest.raises(ConfigError, match="SIGNALS_REPLAY_FILE"):
        make_settings(trading_mode="real", bluefin_private_key=KEY, signals_replay_file=tmp_path / "a.csv")
    # auto with Bluefin unreachable: no fallback to the replay file (it exists) or synthetic prices
    settings = make_settings(
        trading_mode="real",
        bluefin_private_key=KEY,
        market_data_source="auto",
        bluefin_network=f"http://127.0.0.1:{free_port()}",
        bluefin_timeout_s=0.5,
    )
    assert settings.replay_file.exists()
    with pytest.raises(ConfigError) as refused:
        build_feeds(settings)
    (line,) = refused.value.problems
    assert line.startswith("TRADING_MODE=real: Bluefin's live prices are not available")
    assert "refusing to start rather than trade on replayed or synthetic prices" in line


def test_bad_bluefin_settings_are_one_line_each(make_settings: Any) -> None:
    with pytest.raises(ConfigError) as refused:
        make_settings(bluefin_private_key="suiprivkey1nonsense", bluefin_network="mainnet", bluefin_api="v3")
    problems = refused.value.problems
    assert len(problems) == 3
    assert any(p.startswith("BLUEFIN_PRIVATE_KEY: ") and "nonsense" not in p for p in problems)
    assert any(
        p.startswith("BLUEFIN_NETWORK: must be SUI_PROD, SUI_STAGING or an http(s) URL") for p in problems
    )
    assert any(p.startswith("BLUEFIN_API: ") for p in problems)

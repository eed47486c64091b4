"""BluefinProFeed fetches the mark-price candle of every candle it delivers when a paper exchange follows
the mark (MARKET_DATA_SOURCE=bluefin in simulation), from the fake Bluefin Pro (real candles)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared.bluefin_pro.network import pro_hosts
from shared.bluefin_pro.rest import ProClient
from shared.marketdata.bluefin_pro import BluefinProFeed, BluefinProMarketData
from tests.fakes.bluefin_pro import FakeBluefinPro


@pytest.fixture
def fake() -> Iterator[FakeBluefinPro]:
    server = FakeBluefinPro(symbols=("BTC-PERP",), cursor=300)
    server.start()
    yield server
    server.stop()


def test_mark_candles_come_with_the_polled_candles_only_when_followed(fake: FakeBluefinPro) -> None:
    client = ProClient(pro_hosts(fake.url), timeout_s=3, sleep=lambda s: time.sleep(min(s, 0.2)))
    hub = BluefinProMarketData(client, ("BTC-PERP",), stream=False)
    hub.start()
    try:
        plain = BluefinProFeed(hub, "BTC-PERP", poll_interval_s=0.0)
        followed = BluefinProFeed(hub, "BTC-PERP", poll_interval_s=0.0)
        followed.follow_mark()
        plain.history(10)
        followed.history(10)
        fake.advance(3)
        time.sleep(0.25)
        candles = followed.poll()
        assert len(candles) == 3 and plain.poll() == candles
        for candle in candles:  # the fake's mark candles are its last-price ones: the same minutes
            mark = followed.mark_candle(candle.open_time)
            assert mark is not None and mark.open_time == candle.open_time
            assert mark.close == pytest.approx(candle.close)
            assert plain.mark_candle(candle.open_time) is None
    finally:
        hub.stop()

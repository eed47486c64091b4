"""BluefinFeed through the real bluefin-v2-client against a fake Bluefin gateway on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from shared.errors import Temporary
from shared.marketdata.bluefin import BluefinFeed, BluefinMarketData, bluefin_network, from_e18
from shared.marketdata.feeds import load_candle_csv
from shared.models import Side
from tests.conftest import REAL_CANDLES, wait_for
from tests.fakes.bluefin_gateway import FakeBluefinGateway


@pytest.fixture(scope="module")
def shared_gateway() -> Iterator[FakeBluefinGateway]:
    fake = FakeBluefinGateway(cursor=300)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def hub(shared_gateway: FakeBluefinGateway) -> Iterator[BluefinMarketData]:
    """One per process, as in production (the SDK keeps its socket in a module-level client)."""
    data = BluefinMarketData(bluefin_network(shared_gateway.url), ("BTC-PERP",), request_timeout_s=1.0)
    data.start(with_socket=True)
    yield data
    data.stop()


@pytest.fixture
def gateway(shared_gateway: FakeBluefinGateway) -> FakeBluefinGateway:
    shared_gateway.reset()
    return shared_gateway


def test_network_names() -> None:
    assert bluefin_network("SUI_PROD")["apiGateway"].startswith("https://")
    assert bluefin_network("http://127.0.0.1:9")["socketURL"] == "http://127.0.0.1:9"
    assert from_e18("46970000000000000000000") == 46_970.0  # exact, not approximately
    assert from_e18("46425500000000000000000") == 46_425.5
    with pytest.raises(ValueError):
        from_e18(None)


def test_history_and_new_candles_are_the_real_ones(
    gateway: FakeBluefinGateway, hub: BluefinMarketData
) -> None:
    real = load_candle_csv(REAL_CANDLES)
    feed = BluefinFeed(hub, "BTC-PERP")
    history = feed.history(250)
    assert len(history) == 250
    assert history[-1].close == pytest.approx(real["close"].iloc[299])  # 300 is still open
    assert history[0].open_time == real["timestamp"].iloc[50].to_pydatetime()
    assert feed.poll() == []  # nothing new has closed
    gateway.advance(3)
    new = feed.poll()
    assert [c.close for c in new] == pytest.approx(list(real["close"].iloc[300:303]))
    assert ("/candlestickData", {"symbol": "BTC-PERP", "interval": "1m", "limit": "50"}) in gateway.requests
    assert not feed.stale


def test_history_pages_back_beyond_one_call(hub: BluefinMarketData, gateway: FakeBluefinGateway) -> None:
    gateway.advance(2000)
    history = BluefinFeed(hub, "BTC-PERP").history(1500)
    assert len(history) == 1500
    times = [c.open_time for c in history]
    assert times == sorted(set(times))
    assert sum(1 for path, _ in gateway.requests if path == "/candlestickData") == 2


def test_order_book_and_funding(hub: BluefinMarketData) -> None:
    book = hub.orderbook("BTC-PERP")
    assert book.spread_bps > 0 and len(book.bids) == 5
    assert book.market_fill(Side.BUY, 1.0).complete
    funding = hub.funding("BTC-PERP")
    assert funding.rate == pytest.approx(0.0001) and funding.annualised == pytest.approx(0.876)
    assert hub.market_data("BTC-PERP")["openInterest"] == pytest.approx(1234.5)
    assert hub.ticker("BTC-PERP")["marketPrice"] > 0
    ((_, price, quantity),) = hub.recent_trades("BTC-PERP")
    assert price > 0 and quantity == pytest.approx(0.01)


def test_429_and_500_back_off_without_crashing_and_go_stale(
    gateway: FakeBluefinGateway, hub: BluefinMarketData
) -> None:
    feed = BluefinFeed(hub, "BTC-PERP", stale_after_s=0.5)
    feed.history(10)
    gateway.fail("/candlestickData", 429, times=1)
    gateway.fail("/candlestickData", 500, times=1)
    assert feed.poll() == []  # 429: backs off
    assert feed.poll() == []  # still inside the backoff: no request sent
    assert sum(1 for p, _ in gateway.requests if p == "/candlestickData") == 2
    time.sleep(0.6)
    assert feed.stale
    feed._next_try = 0  # skip the wait
    assert feed.poll() == []  # 500
    feed._next_try = 0
    gateway.advance(1)
    assert len(feed.poll()) == 1 and not feed.stale


def test_a_hanging_gateway_is_a_timeout_not_a_hang(
    gateway: FakeBluefinGateway, hub: BluefinMarketData
) -> None:
    gateway.hang("/fundingRate", seconds=3)
    started = time.monotonic()
    with pytest.raises(Temporary, match="did not answer"):
        hub.funding("BTC-PERP")
    assert time.monotonic() - started < 2


def test_live_trades_arrive_over_the_socket_and_survive_a_dropped_connection(
    gateway: FakeBluefinGateway, hub: BluefinMarketData
) -> None:
    wait_for(lambda: hub.socket_connected and gateway.subscriptions)
    gateway.emit_trade("BTC-PERP", 47_000.5, 0.25)
    wait_for(lambda: hub.last_trade_price.get("BTC-PERP") == pytest.approx(47_000.5))
    gateway.drop_sockets()
    wait_for(lambda: hub.reconnects >= 1)
    wait_for(lambda: hub.socket_connected and gateway.connected_clients() == 1, timeout_s=15)
    gateway.emit_trade("BTC-PERP", 47_100.0, 0.1)
    wait_for(lambda: hub.last_trade_price.get("BTC-PERP") == pytest.approx(47_100.0))
    gateway.emit_book("BTC-PERP", [(47_099.0, 2.0), (47_098.0, 1.0)], [(47_101.0, 1.5)])
    book = wait_for(lambda: hub.live_books.get("BTC-PERP"))
    assert book.mid == 47_100.0 and book.bids[1] == (47_098.0, 1.0)


def test_derivatives_give_book_metrics_funding_and_open_interest(
    gateway: FakeBluefinGateway, hub: BluefinMarketData
) -> None:
    feed = BluefinFeed(hub, "BTC-PERP")
    book, funding = feed.derivatives()
    assert book is not None and book["spread_bps"] > 0 and "bid_depth_0.5%" in book
    assert (
        funding is not None
        and funding.rate == pytest.approx(0.0001)
        and funding.open_interest == pytest.approx(1234.5)
    )
    calls = len(gateway.requests)
    assert feed.derivatives() == (book, funding)  # cached: no new request within the refresh interval
    assert len(gateway.requests) == calls

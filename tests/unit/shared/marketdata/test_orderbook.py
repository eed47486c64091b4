from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.marketdata.orderbook import BookError, OrderBook, load_depth_snapshot, load_tardis_snapshots, walk
from shared.models import Side

DATA = Path(__file__).resolve().parents[4].parent / "shared" / "data"
NOW = datetime(2022, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def books() -> list[OrderBook]:
    return load_tardis_snapshots(DATA / "btcusdt-perp_book-snapshot-5.csv", "BTC-PERP")


def test_real_snapshot_metrics_by_hand(books: list[OrderBook]) -> None:
    book = books[0]
    assert len(books) == 10 and len(book.bids) == len(book.asks) == 5
    assert book.mid == pytest.approx((11657.07 + 11657.08) / 2)
    assert book.spread_bps == pytest.approx(0.01 / book.mid * 1e4)
    bid, ask = book.depth(0.001)
    assert bid == pytest.approx(10.896 + 0.2 + 0.2 + 0.98 + 0.111)
    assert ask == pytest.approx(1.714 + 5.4 + 0.238 + 0.077 + 0.918)
    assert book.imbalance(0.001) == pytest.approx((bid - ask) / (bid + ask))


def test_market_buy_walks_the_asks(books: list[OrderBook]) -> None:
    fill = books[0].market_fill(Side.BUY, 3.0)
    expected = (1.714 * 11657.08 + 1.286 * 11657.54) / 3.0
    assert fill.complete and fill.levels_used == 2 and fill.average_price == pytest.approx(expected)
    assert fill.slippage_bps == pytest.approx((expected - books[0].mid) / books[0].mid * 1e4)
    too_big = books[0].market_fill(Side.SELL, 1_000.0)
    assert not too_big.complete and too_big.filled == pytest.approx(12.387) and too_big.levels_used == 5


def test_full_depth_snapshot_one_side(books: list[OrderBook]) -> None:
    bids, asks = load_depth_snapshot(DATA / "btcusdt_depth-snapshot.csv")
    assert len(bids) == 100 and asks == ()
    assert bids[0] == (20377.0, 1.77) and bids[0][0] > bids[1][0]
    fill = walk(bids, 2.0, bids[0][0], Side.SELL)
    # 1.770 @ 20377.0, 0.001 @ 20376.9, 0.009 @ 20376.8, then 0.220 of 1.216 @ 20376.7
    expected = (1.77 * 20377.0 + 0.001 * 20376.9 + 0.009 * 20376.8 + 0.22 * 20376.7) / 2.0
    assert fill.levels_used == 4 and fill.average_price == pytest.approx(expected, rel=1e-12)
    assert fill.slippage_bps == pytest.approx((20377.0 - expected) / 20377.0 * 1e4)


def test_bad_books_are_refused() -> None:
    with pytest.raises(BookError, match="crossed"):
        OrderBook("BTC-PERP", NOW, ((101.0, 1.0),), ((100.0, 1.0),))
    with pytest.raises(BookError, match="sorted"):
        OrderBook("BTC-PERP", NOW, ((99.0, 1.0), (99.5, 1.0)), ((100.0, 1.0),))
    with pytest.raises(BookError):
        OrderBook("BTC-PERP", NOW, (), ((100.0, 1.0),))


levels = st.lists(st.tuples(st.floats(0.01, 10), st.floats(0.001, 5)), min_size=1, max_size=10)


@given(levels, levels, st.floats(0.001, 30), st.sampled_from(list(Side)))
def test_slippage_is_never_negative_and_average_stays_within_the_walked_prices(
    bid_steps: list[tuple[float, float]], ask_steps: list[tuple[float, float]], qty: float, side: Side
) -> None:
    bids, price = [], 100.0
    for step, size in bid_steps:
        bids.append((price, size))
        price -= step
    asks, price = [], 100.5
    for step, size in ask_steps:
        asks.append((price, size))
        price += step
    book = OrderBook("X-PERP", NOW, tuple(bids), tuple(asks))
    fill = book.market_fill(side, qty)
    assert fill.slippage_bps is not None and fill.slippage_bps > 0
    walked = (asks if side is Side.BUY else bids)[: fill.levels_used]
    prices = [p for p, _ in walked]
    assert fill.average_price is not None and min(prices) - 1e-9 <= fill.average_price <= max(prices) + 1e-9

"""Gaps, funding series and mark prices on the paper exchange, by hand-computed examples (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from shared.db import Database
from shared.exchange.paper import PaperConfig, PaperExchange
from shared.marketdata.series import FundingSeries, MarkSeries
from shared.models import OrderRequest, OrderStatus, OrderType, Side
from tests.conftest import open_database

NOW = datetime(2022, 1, 3, 12, 0, tzinfo=UTC)
STAMP = int(NOW.timestamp())
NO_SLIP = PaperConfig(slippage_bps=0.0)


@pytest.fixture(params=["sqlite", "memory"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database | None]:
    if request.param == "memory":
        yield None
    else:
        yield from open_database(request, tmp_path, request.param)


def long_with(database: Database | None, **orders: OrderRequest) -> PaperExchange:
    paper = PaperExchange(database, NO_SLIP)
    paper.on_price("BTC-PERP", 40_000.0, NOW)
    paper.place_order(OrderRequest("e", "BTC-PERP", Side.BUY, 0.1, leverage=3))
    for request in orders.values():
        assert paper.place_order(request).status is OrderStatus.OPEN
    return paper


def sell(
    client_id: str, kind: OrderType, trigger: float | None = None, price: float | None = None
) -> OrderRequest:
    return OrderRequest(
        client_id, "BTC-PERP", Side.SELL, 0.1, order_type=kind, trigger_price=trigger, price=price,
        reduce_only=True, leverage=3,
    )  # fmt: skip


def test_a_stop_gapped_through_fills_at_the_open(database: Database | None) -> None:
    paper = long_with(database, sl=sell("sl", OrderType.STOP_MARKET, trigger=39_000.0))
    # the candle opens at 38,500, below the 39,000 stop: nothing traded at 39,000, the stop-market sells at
    # the first price there is, the open (500 worse than the trigger)
    paper.on_price("BTC-PERP", 38_800.0, NOW + timedelta(minutes=1), 38_900.0, 38_400.0, 38_500.0)
    stop = paper.get_order("sl")
    assert stop is not None and stop.status is OrderStatus.FILLED and stop.average_price == 38_500.0


def test_a_stop_reached_inside_the_candle_fills_at_its_trigger(database: Database | None) -> None:
    paper = long_with(database, sl=sell("sl", OrderType.STOP_MARKET, trigger=39_000.0))
    paper.on_price("BTC-PERP", 38_800.0, NOW + timedelta(minutes=1), 39_900.0, 38_700.0, 39_800.0)
    assert paper.get_order("sl").average_price == 39_000.0  # type: ignore[union-attr]


def test_a_take_profit_market_gapped_through_fills_at_the_better_open(database: Database | None) -> None:
    paper = long_with(database, tp=sell("tp", OrderType.TAKE_PROFIT, trigger=41_000.0))
    # opens at 41,300 above the 41,000 target: the triggered market order sells at the open, 300 better
    paper.on_price("BTC-PERP", 41_200.0, NOW + timedelta(minutes=1), 41_400.0, 41_100.0, 41_300.0)
    assert paper.get_order("tp").average_price == 41_300.0  # type: ignore[union-attr]


def test_a_resting_limit_fills_at_its_own_price_across_a_gap(database: Database | None) -> None:
    paper = long_with(database, tp=sell("tp", OrderType.LIMIT, price=41_000.0))
    # a resting sell at 41,000 is matched at its price: the gap's improvement goes to the incoming buyer
    paper.on_price("BTC-PERP", 41_200.0, NOW + timedelta(minutes=1), 41_400.0, 41_100.0, 41_300.0)
    order = paper.get_order("tp")
    assert (
        order is not None
        and order.average_price == 41_000.0
        and order.fills[0].fee == pytest.approx(0.1 * 41_000 * 0.0002)
    )


def test_funding_series_is_settled_at_its_own_times_and_rates(database: Database | None) -> None:
    paper = long_with(database)
    # settlements at 12:30 (+0.01 %), 13:30 (-0.2 %) and 14:30 (+0.05 %), not on the hour
    times = np.array([STAMP + 1_800, STAMP + 5_400, STAMP + 9_000], dtype=np.int64)
    paper.set_funding_series(FundingSeries("BTC-PERP", times, np.array([0.0001, -0.002, 0.0005])))
    balance = paper.account().balance
    paper.on_price("BTC-PERP", 40_000.0, NOW + timedelta(minutes=29))
    assert paper.account().balance == balance
    assert paper.funding_event() == NOW + timedelta(minutes=30)
    paper.on_price("BTC-PERP", 40_000.0, NOW + timedelta(minutes=30))
    # a long pays +0.01 % of 0.1 x 40,000 = 0.40
    assert paper.account().balance == pytest.approx(balance - 0.4)
    paper.on_price("BTC-PERP", 42_000.0, NOW + timedelta(hours=2, minutes=31))
    # -0.2 % then +0.05 %, both on the mark now (42,000): +8.40 - 2.10; nothing on the hour besides
    assert paper.account().balance == pytest.approx(balance - 0.4 + 8.4 - 2.1)
    assert paper.ledger_total("funding") == pytest.approx(-0.4 + 8.4 - 2.1)
    assert paper.funding_event() is None  # the series is over


def test_stops_liquidation_and_funding_follow_the_mark_when_given(database: Database | None) -> None:
    paper = long_with(database, sl=sell("sl", OrderType.STOP_MARKET, trigger=39_000.0))
    close = np.array([STAMP + 60, STAMP + 120], dtype=np.int64)
    # minute 1: the mark stays above 39,100; minute 2: the mark's low reaches 38,950
    ohlc = np.array([[40_000.0, 40_100.0, 39_100.0, 39_500.0], [39_500.0, 39_600.0, 38_950.0, 39_400.0]])
    paper.set_mark_series(MarkSeries("BTC-PERP", close, ohlc))
    assert paper.price_basis("BTC-PERP") == "mark"
    # a last-price wick to 38,800 does not trigger a stop measured on the mark (low 39,100)
    paper.on_price("BTC-PERP", 39_500.0, NOW + timedelta(minutes=1), 39_900.0, 38_800.0, 39_900.0)
    assert paper.get_order("sl").status is OrderStatus.OPEN  # type: ignore[union-attr]
    # the mark reaches the stop while the last price stays above it (low 39,200): the triggered market
    # order sells where the last price traded, inside its range: 39,200 at worst (clamped to the low)
    paper.on_price("BTC-PERP", 39_300.0, NOW + timedelta(minutes=2), 39_600.0, 39_200.0, 39_500.0)
    stop = paper.get_order("sl")
    assert stop is not None and stop.status is OrderStatus.FILLED and stop.average_price == 39_200.0


def test_without_a_mark_series_the_basis_is_the_last_price() -> None:
    paper = PaperExchange(None, NO_SLIP)
    assert paper.price_basis("BTC-PERP") == "last" and paper.mark_extremes("BTC-PERP", np.array([1])) is None


def test_live_mark_candles_are_added_one_by_one_and_drive_the_stop() -> None:
    paper = long_with(None, sl=sell("sl", OrderType.STOP_MARKET, trigger=39_000.0))
    close = NOW + timedelta(minutes=1)
    paper.add_mark_candle("BTC-PERP", close, (40_000.0, 40_100.0, 39_100.0, 39_500.0))
    paper.add_mark_candle("BTC-PERP", close, (1.0, 1.0, 1.0, 1.0))  # a repeat is ignored
    assert paper.price_basis("BTC-PERP") == "mark"
    # the last price wicks to 38,800, the mark only to 39,100: the stop stays
    paper.on_price("BTC-PERP", 39_500.0, close, 39_900.0, 38_800.0, 39_900.0)
    assert paper.get_order("sl").status is OrderStatus.OPEN  # type: ignore[union-attr]
    later = NOW + timedelta(minutes=2)
    paper.add_mark_candle("BTC-PERP", later, (39_500.0, 39_600.0, 38_900.0, 39_000.0))
    paper.on_price("BTC-PERP", 39_100.0, later, 39_600.0, 38_950.0, 39_500.0)
    # the mark reached 38,900 <= 39,000; the last price traded down to 38,950, below the trigger: at 39,000
    assert paper.get_order("sl").average_price == 39_000.0  # type: ignore[union-attr]

"""The market driver feeds a simulated venue candles, marks and funding; for a real exchange it does nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.engine.market_driver import MarketDriver
from shared.exchange.paper import PaperConfig, PaperExchange
from shared.exchange.simulated import SimulatedVenue
from shared.marketdata.funding import FundingRate
from shared.models import Candle, OrderRequest, OrderStatus, OrderType, Side

OPEN = datetime(2024, 1, 1, tzinfo=UTC)
CLOSE = OPEN + timedelta(minutes=1)


class RealExchange(PaperExchange):
    """An exchange that follows its own market: no simulated venue to drive."""

    def simulated_venue(self) -> SimulatedVenue | None:
        return None


def candle(close: float, high: float, low: float) -> Candle:
    return Candle("BTC-PERP", OPEN, close, high, low, close, 1.0)


def test_a_candle_reaches_the_simulated_venue_and_its_mark_triggers_stops() -> None:
    paper = PaperExchange(None, PaperConfig(slippage_bps=0.0))
    driver = MarketDriver(paper)
    assert driver.simulated and driver.venue is paper
    driver.on_candle(candle(40_000.0, 40_100.0, 39_900.0), OPEN, None)
    assert paper.mark_price("BTC-PERP") == 40_000.0
    paper.place_order(OrderRequest("e1", "BTC-PERP", Side.BUY, 0.1, leverage=3))
    stop = OrderRequest(
        "s1", "BTC-PERP", Side.SELL, 0.1, order_type=OrderType.STOP_MARKET, trigger_price=39_000.0,
        reduce_only=True, leverage=3,
    )  # fmt: skip
    paper.place_order(stop)
    # the last price never reaches the stop, the mark candle does: stops trigger on the mark
    mark = Candle("BTC-PERP", OPEN, 39_800.0, 39_900.0, 38_900.0, 39_500.0, 0.0)
    driver.on_candle(candle(39_600.0, 39_900.0, 39_500.0), CLOSE, mark)
    result = paper.get_order("s1")
    assert result is not None and result.status is OrderStatus.FILLED
    assert paper.price_basis("BTC-PERP") == "mark"


def test_funding_reaches_the_venue_and_the_driver_reports_its_ledger() -> None:
    paper = PaperExchange(None, PaperConfig(slippage_bps=0.0))
    driver = MarketDriver(paper)
    driver.on_funding(FundingRate("BTC-PERP", 0.001, OPEN))
    assert paper.funding_rate("BTC-PERP") == FundingRate("BTC-PERP", 0.001, OPEN)
    driver.on_candle(candle(40_000.0, 40_000.0, 40_000.0), CLOSE, None)
    paper.place_order(OrderRequest("e1", "BTC-PERP", Side.BUY, 0.1, leverage=3))
    driver.on_candle(candle(40_000.0, 40_000.0, 40_000.0), CLOSE + timedelta(hours=1), None)
    assert driver.funding_pending
    (payment,) = driver.drain_funding()
    assert payment.amount < 0 and not driver.funding_pending  # a long pays a positive rate
    assert driver.ledger_total("funding") == paper.ledger_total("funding") == payment.amount


def test_for_a_real_exchange_the_driver_does_nothing() -> None:
    real = RealExchange(None, PaperConfig(slippage_bps=0.0))
    driver = MarketDriver(real)
    assert not driver.simulated and driver.booked_until() is None
    driver.on_candle(candle(40_000.0, 40_100.0, 39_900.0), CLOSE, None)
    driver.on_funding(FundingRate("BTC-PERP", 0.001, OPEN))
    driver.advance("BTC-PERP", 41_000.0, CLOSE)
    assert real.mark_price("BTC-PERP") is None and real.funding_rate("BTC-PERP") is None  # nothing fed
    assert driver.drain_liquidations() == [] and driver.drain_funding() == []
    assert not driver.liquidations_pending and not driver.funding_pending and driver.ledger_total() == 0.0

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.db import Database
from shared.errors import Rejected, Temporary
from shared.exchange.paper import PaperExchange
from shared.models import OrderRequest, OrderStatus, Side

NOW = datetime(2022, 1, 3, 12, 0, tzinfo=UTC)


def exchange(database: Database, fee: float = 0.0005) -> PaperExchange:
    paper = PaperExchange(database, 10_000.0, fee)
    paper.on_price("BTC-PERP", 40_000.0, NOW)
    return paper


def test_market_order_fills_at_mark_with_taker_fee(database: Database) -> None:
    paper = exchange(database)
    result = paper.place_order(OrderRequest("c1", "BTC-PERP", Side.BUY, 0.025, leverage=3))
    assert result.status is OrderStatus.FILLED
    assert result.average_price == 40_000.0
    # hand computed: 0.025 BTC x 40,000 = 1,000 USDC notional; fee 5 bps = 0.50
    assert result.fills[0].fee == pytest.approx(0.5)
    assert paper.account().balance == pytest.approx(9_999.5)
    paper.on_price("BTC-PERP", 42_000.0, NOW)
    assert paper.account().unrealized_pnl == pytest.approx(50.0)
    close = paper.place_order(OrderRequest("c2", "BTC-PERP", Side.SELL, 0.025, reduce_only=True))
    # +50 realised, fee 0.025 x 42,000 x 0.0005 = 0.525
    assert close.fills[0].fee == pytest.approx(0.525)
    assert paper.account().balance == pytest.approx(10_000 - 0.5 + 50 - 0.525)
    assert paper.positions() == []


def test_state_survives_a_restart(database: Database) -> None:
    exchange(database).place_order(OrderRequest("c1", "BTC-PERP", Side.SELL, 0.1, leverage=3))
    again = exchange(database)
    assert [p.quantity for p in again.positions()] == [-0.1]
    assert again.get_order("c1") is not None and again.get_order("c1").filled_quantity == 0.1  # type: ignore[union-attr]
    assert again.get_order("unknown") is None


def test_reduce_only_never_increases_a_position(database: Database) -> None:
    paper = exchange(database)
    with pytest.raises(Rejected):
        paper.place_order(OrderRequest("c1", "BTC-PERP", Side.BUY, 0.1, reduce_only=True))
    paper.place_order(OrderRequest("c2", "BTC-PERP", Side.BUY, 0.1, leverage=3))
    result = paper.place_order(OrderRequest("c3", "BTC-PERP", Side.SELL, 0.5, reduce_only=True))
    assert result.filled_quantity == pytest.approx(0.1)
    assert paper.positions() == []


def test_insufficient_margin_is_rejected_and_changes_nothing(database: Database) -> None:
    paper = exchange(database)
    with pytest.raises(Rejected, match="insufficient margin"):
        paper.place_order(OrderRequest("c1", "BTC-PERP", Side.BUY, 1.0, leverage=3))  # 40k notional / 3 > 10k
    assert paper.account().balance == 10_000.0 and paper.get_order("c1") is None


def test_duplicate_client_id_is_rejected(database: Database) -> None:
    paper = exchange(database)
    paper.place_order(OrderRequest("c1", "BTC-PERP", Side.BUY, 0.01, leverage=3))
    with pytest.raises(Rejected, match="duplicate"):
        paper.place_order(OrderRequest("c1", "BTC-PERP", Side.BUY, 0.01, leverage=3))


def test_no_price_yet_is_temporary(database: Database) -> None:
    paper = PaperExchange(database, 10_000.0, 0.0005)
    with pytest.raises(Temporary):
        paper.place_order(OrderRequest("c1", "ETH-PERP", Side.BUY, 0.01))

"""BluefinExchange through the real bluefin-v2-client against the fake gateway, which verifies every
order's ed25519 signature with the public key the SDK sends."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from agent.execution.orders import OrderExecutor, PlannedOrder
from agent.journal.events import Journal
from agent.journal.store import DatabaseStore
from shared.db import Database, FillRow, OrderRow
from shared.errors import Rejected, UnknownOutcome
from shared.exchange.bluefin import BluefinExchange
from shared.marketdata.bluefin import bluefin_network
from shared.marketdata.feeds import load_candle_csv
from shared.models import OrderRequest, OrderStatus, OrderType, Side
from tests.conftest import REAL_CANDLES
from tests.fakes.bluefin_gateway import FakeBluefinGateway

KEY = "0x" + secrets.token_hex(32)


@pytest.fixture(scope="module")
def shared_gateway() -> Iterator[FakeBluefinGateway]:
    fake = FakeBluefinGateway()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def gateway(shared_gateway: FakeBluefinGateway) -> FakeBluefinGateway:
    shared_gateway.reset()
    return shared_gateway


@pytest.fixture
def bluefin(gateway: FakeBluefinGateway) -> Iterator[BluefinExchange]:
    exchange = BluefinExchange(bluefin_network(gateway.url), KEY, ("BTC-PERP",), timeout_s=1.0)
    exchange.start()
    yield exchange
    exchange.stop()


def market(client_id: str, side: Side = Side.BUY, qty: float = 0.025) -> OrderRequest:
    return OrderRequest(client_id, "BTC-PERP", side, qty, leverage=3)


def test_onboarding_and_a_signed_market_order(gateway: FakeBluefinGateway, bluefin: BluefinExchange) -> None:
    assert gateway.users and ("/authorize", {}) in gateway.requests
    result = bluefin.place_order(market("bfa-1"))
    close = float(load_candle_csv(REAL_CANDLES)["close"].iloc[300])
    assert result.status is OrderStatus.FILLED and result.client_id == "bfa-1"
    assert result.average_price == pytest.approx(close) and result.filled_quantity == pytest.approx(0.025)
    assert len(gateway.public_keys) == 1  # the signature verified with the key the SDK sent
    (stored,) = gateway.orders.values()
    assert stored["clientId"] == "bluefin-v2-client-python: bfa-1" and stored["quantity"] == str(25 * 10**15)
    assert bluefin.get_order("bfa-1") == result and bluefin.get_order("never-sent") is None
    (position,) = bluefin.positions()
    assert position.quantity == pytest.approx(0.025) and position.entry_price == pytest.approx(close)
    assert bluefin.account().equity == pytest.approx(10_000.0)


def test_a_tampered_order_fails_the_gateways_signature_check(
    gateway: FakeBluefinGateway, bluefin: BluefinExchange
) -> None:
    from bluefin_v2_client import MARKET_SYMBOLS, ORDER_SIDE, ORDER_TYPE

    signed = bluefin._client.create_signed_order(
        {"symbol": MARKET_SYMBOLS.BTC, "price": 0, "quantity": 1, "side": ORDER_SIDE.BUY,
         "orderType": ORDER_TYPE.MARKET, "leverage": 3}
    )  # fmt: skip
    form = {
        "price": str(signed["price"]), "quantity": str(signed["quantity"] * 2), "leverage": str(signed["leverage"]),
        "salt": str(signed["salt"]), "expiration": str(signed["expiration"]), "userAddress": signed["maker"],
        "timeInForce": "GTT", "postOnly": "False", "reduceOnly": "False", "side": "BUY", "orderbookOnly": "True",
        "orderSignature": signed["orderSignature"],
    }  # fmt: skip
    assert gateway.verify_order(form) is None
    form["quantity"] = str(signed["quantity"])
    assert gateway.verify_order(form) is not None


def test_limit_order_rests_and_cancels(gateway: FakeBluefinGateway, bluefin: BluefinExchange) -> None:
    request = OrderRequest("bfa-l", "BTC-PERP", Side.BUY, 0.01, OrderType.LIMIT, price=30_000.0, leverage=3)
    assert bluefin.place_order(request).status is OrderStatus.OPEN
    assert [o.client_id for o in bluefin.open_orders()] == ["bfa-l"]
    assert bluefin.cancel_order("bfa-l").status is OrderStatus.CANCELED
    with pytest.raises(Rejected, match="not open"):
        bluefin.cancel_order("bfa-l")
    assert bluefin.open_orders() == []


def test_unsupported_requests_are_rejected_before_signing(bluefin: BluefinExchange) -> None:
    with pytest.raises(Rejected, match="TAKE_PROFIT"):
        bluefin.place_order(
            OrderRequest("x", "BTC-PERP", Side.SELL, 0.01, OrderType.TAKE_PROFIT, trigger_price=50_000.0)
        )


def test_500_and_timeouts_are_unknown_outcomes_and_429_is_a_rejection(
    gateway: FakeBluefinGateway, bluefin: BluefinExchange
) -> None:
    gateway.fail("/orders", 500)
    with pytest.raises(UnknownOutcome):
        bluefin.place_order(market("bfa-500"))
    assert bluefin.get_order("bfa-500") is None  # the gateway failed before storing it
    gateway.fail("/orders", 429)
    with pytest.raises(Rejected, match="rate limited"):
        bluefin.place_order(market("bfa-429"))
    gateway.hang_after_accept_s = 2.0  # stored, then the answer never comes in time
    with pytest.raises(UnknownOutcome):
        bluefin.place_order(market("bfa-slow"))
    gateway.hang_after_accept_s = 0.0
    found = bluefin.get_order("bfa-slow")
    assert found is not None and found.status is OrderStatus.FILLED


def test_executor_places_once_and_reconciles_unknown_outcomes(
    gateway: FakeBluefinGateway, bluefin: BluefinExchange, database: Database
) -> None:
    """Timeouts, 429 and 5xx during placement never make a second order; the truth comes from the
    exchange by client id; fills reported cumulatively are booked once."""
    executor = OrderExecutor(DatabaseStore(database), bluefin, Journal(None))
    outcomes = {}
    for name, trouble in (("timeout", "hang"), ("server", 500), ("rate", 429), ("lost", "drop")):
        if trouble == "hang":
            gateway.hang_after_accept_s = 2.0
        elif trouble == "drop":
            gateway.drop_orders = 1
        else:
            gateway.fail("/orders", int(trouble))
        with database.session() as session:
            row = executor.pending_row(PlannedOrder("BTC-PERP", Side.BUY, 0.01, False, 3, name), None, None)
            session.add(row)
            client_id = row.client_id
        executor.submit(client_id, 3)
        gateway.hang_after_accept_s = 0.0
        outcomes[name] = client_id
    for _ in range(3):
        executor.reconcile_pending()
        executor.reconcile_pending()  # twice in a row: fills are not booked again
    with database.session() as session:
        status = {name: session.scalar(select_status(cid)) for name, cid in outcomes.items()}
        fills = session.scalars(select_fills()).all()
    assert status == {"timeout": "FILLED", "server": "LOST", "rate": "REJECTED", "lost": "LOST"}
    placed = [o for o in gateway.orders.values() if o["clientId"].endswith(tuple(outcomes.values()))]
    assert len(placed) == 1  # only the order whose answer timed out reached the book, once
    assert [f.quantity for f in fills] == pytest.approx([0.01])


def select_status(client_id: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    return select(OrderRow.status).where(OrderRow.client_id == client_id)


def select_fills():  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    return select(FillRow)


def test_leverage_funding_and_book(gateway: FakeBluefinGateway, bluefin: BluefinExchange) -> None:
    bluefin.set_leverage("BTC-PERP", 5)
    assert gateway.leverage["BTC-PERP"] == 5.0
    bluefin.place_order(market("bfa-lev"))
    with pytest.raises(Rejected, match="flat"):
        bluefin.set_leverage("BTC-PERP", 7)
    assert bluefin.funding_rate("BTC-PERP").rate == pytest.approx(0.0001)  # type: ignore[union-attr]
    assert bluefin.orderbook("BTC-PERP").spread_bps > 0  # type: ignore[union-attr]
    assert bluefin.mark_price("BTC-PERP") > 0  # type: ignore[operator]


def test_cancel_on_disconnect_timer_is_refreshed(
    gateway: FakeBluefinGateway, bluefin: BluefinExchange
) -> None:
    assert bluefin.refresh_cancel_on_disconnect(30_000) == ["BTC-PERP"]
    assert gateway.dms_resets[-1]["countDowns"] == [{"symbol": "BTC-PERP", "countDown": 30_000}]

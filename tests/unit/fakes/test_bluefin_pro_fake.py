"""The fake Bluefin Pro behaves as an exchange: tokens expire and refresh, orders are answered 202 and
matched afterwards, partial fills, stops and take-profits, post-only, reduce-only, IOC/FOK, leverage,
isolated margin and liquidation, funding, candles and streams; and it misbehaves on request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import free_port, wait_for
from tests.fakes.bluefin_pro import FakeBluefinPro
from tests.unit.fakes.bluefin_sdk import (
    E9,
    Session,
    StreamClient,
    account_stream,
    leverage_request,
    login,
    margin_request,
    market_stream,
    now_ms,
    python_order,
)

ROOT = Path(__file__).resolve().parents[3]
BTC = "BTC-PERP"
PRICE = 46_849.0  # the close of the open candle at the default cursor (300) of the real BTC month
MAKER_FEE, TAKER_FEE, MMR = 0.0001, 0.00035, 0.0175


def settle(fake: FakeBluefinPro, order_hash: str, status: str) -> dict[str, Any]:
    order: dict[str, Any] = wait_for(
        lambda: fake.orders[order_hash] if fake.orders[order_hash]["status"] == status else None, 3.0
    )
    return order


def cancellation(stream: StreamClient, order_hash: str) -> dict[str, Any]:
    frame = stream.wait(
        lambda f: (
            f.get("event") == "AccountOrderUpdate"
            and f["payload"]["orderHash"] == order_hash
            and "cancellationReason" in f["payload"]
        )
    )
    payload: dict[str, Any] = frame["payload"]
    return payload


@pytest.fixture
def stream(fake: FakeBluefinPro, session: Session) -> Iterator[StreamClient]:
    opened = account_stream(fake.url, session.token)
    yield opened
    opened.close()


def long_position(fake: FakeBluefinPro, session: Session, quantity: float = 0.01) -> None:
    settle(fake, session.place("MARKET", quantity=quantity), "FILLED")


# --- auth ----------------------------------------------------------------------------------------------
def test_expired_tokens_are_refused_and_refresh_gives_a_working_one(fake: FakeBluefinPro) -> None:
    client = httpx.Client(base_url=fake.url, timeout=5.0)
    tokens = login(client, Session.open(fake.url, fake.ids_id).wallet).json()
    bearer = {"Authorization": f"Bearer {tokens['accessToken']}"}
    assert client.get("/api/v1/trade/openOrders", headers=bearer).status_code == 200
    fake.expire_tokens()
    refused = client.get("/api/v1/trade/openOrders", headers=bearer)
    assert refused.status_code == 401 and refused.json()["message"]
    renewed = client.put("/auth/token/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert renewed.status_code == 200 and renewed.json()["accessToken"] != tokens["accessToken"]
    fresh = {"Authorization": f"Bearer {renewed.json()['accessToken']}"}
    assert client.get("/api/v1/trade/openOrders", headers=fresh).status_code == 200
    assert client.put("/auth/token/refresh", json={"refreshToken": "unknown"}).status_code == 401
    assert (fake.logins, fake.refreshes) == (2, 1)
    client.close()


def test_an_access_token_lapses_after_its_lifetime() -> None:
    fake = FakeBluefinPro(access_ttl_s=0.3)
    fake.start()
    try:
        session = Session.open(fake.url, fake.ids_id)
        assert session.client.get("/api/v1/account/trades").status_code == 200
        time.sleep(0.4)
        assert session.client.get("/api/v1/account/trades").status_code == 401
        with pytest.raises(InvalidStatus):
            account_stream(fake.url, session.token)
        assert ("/ws/account", "invalid access token on the account stream") in fake.refusals
    finally:
        fake.stop()


def test_trading_needs_a_valid_bearer_and_a_trading_token(fake: FakeBluefinPro, session: Session) -> None:
    body = python_order(session.wallet, session.fields(price="40000000000000"))
    assert httpx.post(fake.url + "/api/v1/trade/orders", json=body).status_code == 401
    assert (
        httpx.post(
            fake.url + "/api/v1/trade/orders", json=body, headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    read_only = login(session.client, session.wallet, query="?readOnly=true").json()["accessToken"]
    headers = {"Authorization": f"Bearer {read_only}"}
    assert httpx.post(fake.url + "/api/v1/trade/orders", json=body, headers=headers).status_code == 403
    assert httpx.get(fake.url + "/api/v1/trade/openOrders", headers=headers).status_code == 200
    assert fake.orders == {} and len(fake.order_requests) == 3
    assert session.post_order(body).status_code == 202


# --- the 202 and the outcome ---------------------------------------------------------------------------
def test_the_answer_comes_first_and_the_fill_after_fill_delay(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    fake.fill_delay_s = 0.4
    started = time.monotonic()
    order_hash = session.place("MARKET", quantity=0.01, client_order_id="late")
    assert time.monotonic() - started < 0.3
    assert fake.orders[order_hash]["status"] == "PENDING" and not stream.events("AccountTradeUpdate")
    filled = settle(fake, order_hash, "FILLED")
    assert time.monotonic() - started >= 0.4 and filled["averagePrice"] == PRICE
    trade = stream.wait(lambda f: f.get("event") == "AccountTradeUpdate")["payload"]["trade"]
    assert trade["orderHash"] == order_hash and trade["clientOrderId"] == "late" and trade["isMaker"] is False
    assert int(trade["tradingFeeE9"]) == round(PRICE * 0.01 * TAKER_FEE * E9)


def test_hold_answer_matches_the_order_but_answers_late(fake: FakeBluefinPro, session: Session) -> None:
    fake.hold_answer_s = 1.0
    body = python_order(session.wallet, session.fields(quantity="10000000"), "MARKET")
    with pytest.raises(httpx.ReadTimeout):
        session.client.post("/api/v1/trade/orders", json=body, timeout=0.3)
    (order,) = fake.orders.values()
    assert settle(fake, order["orderHash"], "FILLED")["filled"] == 0.01  # done, though nobody heard back
    assert fake.account(session.wallet.address)["positions"][BTC]["size"] == 0.01


# --- partial fills -------------------------------------------------------------------------------------
def test_a_market_order_takes_the_liquidity_and_the_rest_is_cancelled(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    fake.liquidity[BTC] = 0.004
    order_hash = session.place("MARKET", quantity=0.01)
    order = settle(fake, order_hash, "PARTIALLY_FILLED_CANCELED")
    assert order["filled"] == 0.004
    cancelled = cancellation(stream, order_hash)
    assert (
        cancelled["cancellationReason"] == "INSUFFICIENT_LIQUIDITY"
        and cancelled["remainingQuantityE9"] == "6000000"
    )
    assert fake.account(session.wallet.address)["positions"][BTC]["size"] == 0.004


def test_a_resting_limit_fills_partially_on_each_move_at_its_price(
    fake: FakeBluefinPro, session: Session
) -> None:
    fake.liquidity[BTC] = 0.004
    order_hash = session.place("LIMIT", price=46_800.0, quantity=0.01, client_order_id="rest")
    settle(fake, order_hash, "OPEN")
    fake.set_price(BTC, 46_820.0)  # not through it yet
    assert fake.orders[order_hash]["filled"] == 0
    fake.set_price(BTC, 46_790.0)
    assert (
        fake.orders[order_hash]["status"] == "PARTIALLY_FILLED_OPEN"
        and fake.orders[order_hash]["filled"] == 0.004
    )
    (listed,) = session.client.get("/api/v1/trade/openOrders").json()
    assert listed["filledQuantityE9"] == "4000000" and listed["clientOrderId"] == "rest"
    fake.set_price(BTC, 46_780.0)
    fake.set_price(BTC, 46_770.0)
    assert settle(fake, order_hash, "FILLED")["averagePrice"] == 46_800.0
    trades = session.client.get("/api/v1/account/trades").json()
    assert [t["quantityE9"] for t in trades] == ["2000000", "4000000", "4000000"]  # newest first
    assert all(
        t["isMaker"] and t["priceE9"] == "46800000000000" and t["clientOrderId"] == "rest" for t in trades
    )
    assert int(trades[-1]["tradingFeeE9"]) == round(46_800 * 0.004 * MAKER_FEE * E9)


def test_a_limit_at_the_price_trades_on_touch(fake: FakeBluefinPro, session: Session) -> None:
    at_price = session.place("LIMIT", price=PRICE, quantity=0.01)
    assert settle(fake, at_price, "FILLED")["averagePrice"] == PRICE  # marketable when placed: taken
    take_profit = session.place("LIMIT", price=46_900.0, quantity=0.01, side="SHORT", reduce_only=True)
    settle(fake, take_profit, "OPEN")
    fake.set_price(BTC, 46_900.0)  # touches it
    assert settle(fake, take_profit, "FILLED")["averagePrice"] == 46_900.0
    trades = session.client.get("/api/v1/account/trades").json()
    assert [t["isMaker"] for t in trades] == [True, False]


def test_closing_realises_the_pnl_and_releases_the_margin(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    long_position(fake, session)
    assert fake.account(session.wallet.address)["margin_available"] < 10_000 - 150
    fake.set_price(BTC, PRICE + 1_000)
    assert fake.account(session.wallet.address)["positions"][BTC]["unrealized_pnl"] == pytest.approx(10.0)
    margin = fake.account(session.wallet.address)["positions"][BTC]["margin"]
    settle(fake, session.place("MARKET", quantity=0.004, side="SHORT"), "FILLED")  # a part: 40 % released
    assert fake.account(session.wallet.address)["positions"][BTC]["margin"] == pytest.approx(
        margin * 0.6, abs=1e-6
    )
    settle(fake, session.place("MARKET", quantity=0.006, side="SHORT"), "FILLED")
    fees = PRICE * 0.01 * TAKER_FEE + (PRICE + 1_000) * 0.01 * TAKER_FEE
    account = fake.account(session.wallet.address)
    assert account["positions"] == {} and account["balance"] == pytest.approx(10_000 + 10 - fees, abs=1e-6)
    assert account["margin_available"] == pytest.approx(account["balance"], abs=1e-6)
    closing = session.client.get("/api/v1/account/trades").json()[0]
    assert closing["realizedPnlE9"] == str(6 * E9) and closing["positionSide"] == "LONG"
    pnl = stream.wait(
        lambda f: (
            f.get("event") == "AccountTransactionUpdate" and f["payload"]["transactionType"] == "REALIZED_PNL"
        )
    )
    assert pnl["payload"]["amountE9"] == str(4 * E9)  # the first, partial close
    closed = stream.wait(
        lambda f: f.get("event") == "AccountPositionUpdate" and f["payload"]["sizeE9"] == "0"
    )
    assert closed["payload"]["side"] == "LONG" and closed["payload"]["isolatedMarginE9"] == "0"


def test_a_marketable_limit_takes_now_and_rests_the_rest(fake: FakeBluefinPro, session: Session) -> None:
    fake.liquidity[BTC] = 0.003
    order_hash = session.place("LIMIT", price=46_900.0, quantity=0.01)
    order = settle(fake, order_hash, "PARTIALLY_FILLED_OPEN")
    assert order["filled"] == 0.003 and order["averagePrice"] == PRICE  # took at the market, not its limit
    assert [o["orderHash"] for o in session.client.get("/api/v1/trade/openOrders").json()] == [order_hash]


# --- standby orders ------------------------------------------------------------------------------------
def test_a_sell_stop_waits_in_standby_then_triggers_on_set_price(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    long_position(fake, session)
    stop = session.place(
        "STOP_MARKET",
        trigger=46_600.0,
        quantity=0.01,
        side="SHORT",
        reduce_only=True,
        time_in_force=None,
        client_order_id="sl",
    )
    settle(fake, stop, "STANDBY")
    assert [o["orderHash"] for o in session.client.get("/api/v1/trade/standbyOrders").json()] == [stop]
    assert session.client.get("/api/v1/trade/openOrders").json() == []
    fake.set_price(BTC, 46_700.0)
    assert fake.orders[stop]["status"] == "STANDBY"
    fake.set_price(BTC, 46_550.0)
    assert settle(fake, stop, "FILLED")["averagePrice"] == 46_550.0
    assert fake.account(session.wallet.address)["positions"] == {}
    stream.wait(
        lambda f: (
            f.get("event") == "AccountOrderUpdate"
            and f["payload"].get("status") == "FILLED"
            and f["payload"]["orderHash"] == stop
        )
    )
    updates = [f["payload"] for f in stream.events("AccountOrderUpdate") if f["payload"]["orderHash"] == stop]
    assert [u["status"] for u in updates] == ["STANDBY", "OPEN", "FILLED"]
    assert {u["clientOrderId"] for u in updates} == {"sl"}
    assert updates[0]["triggerPriceE9"] == "46600000000000"


def test_a_buy_stop_triggers_when_advance_brings_the_price_up(fake: FakeBluefinPro, session: Session) -> None:
    candles = fake.engine.candles[BTC]
    later = next(
        i for i in range(fake.engine.cursor + 1, len(candles)) if candles[i].close > candles[300].close
    )
    stop = session.place("STOP_MARKET", trigger=PRICE + 0.1, quantity=0.01, time_in_force=None)
    settle(fake, stop, "STANDBY")
    fake.advance(later - fake.engine.cursor - 1)
    assert fake.orders[stop]["status"] == "STANDBY" and fake.price(BTC) <= PRICE
    fake.advance(1)
    assert settle(fake, stop, "FILLED")["averagePrice"] == fake.price(BTC) > PRICE


def test_take_profits_trigger_on_the_other_side(fake: FakeBluefinPro, session: Session) -> None:
    long_position(fake, session)
    sell_tp = session.place(
        "TAKE_PROFIT_MARKET",
        trigger=47_000.0,
        quantity=0.01,
        side="SHORT",
        reduce_only=True,
        time_in_force=None,
    )
    buy_tp = session.place("TAKE_PROFIT_LIMIT", price=46_400.0, trigger=46_500.0, quantity=0.005)
    settle(fake, buy_tp, "STANDBY")
    fake.set_price(BTC, 46_450.0)  # at or below 46 500: the buy take-profit becomes a limit at 46 400
    assert settle(fake, buy_tp, "OPEN")["filled"] == 0 and fake.orders[sell_tp]["status"] == "STANDBY"
    fake.set_price(BTC, 47_100.0)
    assert settle(fake, sell_tp, "FILLED")["averagePrice"] == 47_100.0


def test_standby_orders_are_cancelled_on_their_own_endpoint(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    stop = session.place("STOP_LIMIT", price=46_000.0, trigger=46_100.0, quantity=0.01, side="SHORT")
    settle(fake, stop, "STANDBY")
    assert (
        session.client.put(
            "/api/v1/trade/orders/cancel", json={"symbol": BTC, "orderHashes": [stop]}
        ).status_code
        == 202
    )
    assert cancellation(stream, stop)["failureToCancelReason"] == "ORDER_NOT_FOUND"
    answer = session.client.put(
        "/api/v1/trade/orders/cancel/standby", json={"symbol": BTC, "orderHashes": [stop]}
    )
    assert answer.status_code == 200 and answer.json() == {"orderHashes": [stop]}
    assert fake.orders[stop]["status"] == "CANCELLED"
    assert session.client.get("/api/v1/trade/standbyOrders").json() == []


# --- order flags ---------------------------------------------------------------------------------------
def test_post_only_that_would_trade_is_cancelled(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    crossing = session.place("LIMIT", price=46_900.0, quantity=0.01, post_only=True)
    assert settle(fake, crossing, "CANCELLED")["filled"] == 0
    assert cancellation(stream, crossing)["cancellationReason"] == "POST_ONLY_WOULD_TRADE"
    passive = session.place("LIMIT", price=46_800.0, quantity=0.01, post_only=True)
    settle(fake, passive, "OPEN")


def test_reduce_only_is_clipped_to_the_position_and_never_opens(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    opening = session.place("MARKET", quantity=0.01, side="SHORT", reduce_only=True)
    settle(fake, opening, "CANCELLED")
    assert cancellation(stream, opening)["cancellationReason"] == "REDUCE_ONLY_WOULD_OPEN"
    long_position(fake, session)
    adding = session.place("MARKET", quantity=0.01, reduce_only=True)  # a buy on a long adds to it
    settle(fake, adding, "CANCELLED")
    closing = session.place("MARKET", quantity=0.03, side="SHORT", reduce_only=True)
    assert settle(fake, closing, "PARTIALLY_FILLED_CANCELED")["filled"] == 0.01
    assert cancellation(stream, closing)["cancellationReason"] == "ORDER_NOT_REDUCING_POSITION"
    assert fake.account(session.wallet.address)["positions"] == {}


def test_ioc_fills_what_it_can_now_and_cancels_the_rest(fake: FakeBluefinPro, session: Session) -> None:
    fake.liquidity[BTC] = 0.004
    crossing = session.place("LIMIT", price=46_900.0, quantity=0.01, time_in_force="IOC")
    assert settle(fake, crossing, "PARTIALLY_FILLED_CANCELED")["filled"] == 0.004
    passive = session.place("LIMIT", price=46_000.0, quantity=0.01, time_in_force="IOC")
    assert settle(fake, passive, "CANCELLED")["filled"] == 0
    assert session.client.get("/api/v1/trade/openOrders").json() == []


def test_fok_is_all_or_nothing(fake: FakeBluefinPro, session: Session) -> None:
    fake.liquidity = {BTC: 0.004}
    refused = session.place("LIMIT", price=46_900.0, quantity=0.01, time_in_force="FOK")
    assert settle(fake, refused, "CANCELLED")["filled"] == 0
    del fake.liquidity[BTC]
    done = session.place("LIMIT", price=46_900.0, quantity=0.01, time_in_force="FOK")
    assert settle(fake, done, "FILLED")["filled"] == 0.01


def test_an_order_without_margin_for_it_is_cancelled() -> None:
    fake = FakeBluefinPro(starting_balance=100.0)
    fake.start()
    try:
        session = Session.open(fake.url, fake.ids_id)
        big = session.place("MARKET", quantity=0.01)  # 468 USDC of notional needs 156 at 3x
        assert settle(fake, big, "CANCELLED")["cancelReason"] == "INSUFFICIENT_MARGIN"
        fake.fund(session.wallet.address, 1_000.0)
        assert fake.account(session.wallet.address)["balance"] == 1_100.0
        settle(fake, session.place("MARKET", quantity=0.01), "FILLED")
    finally:
        fake.stop()


def test_an_expired_order_is_cancelled_and_a_resting_one_expires(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    late = session.place("LIMIT", price=46_000.0, quantity=0.01, expires=now_ms() - 1)
    assert settle(fake, late, "EXPIRED")["cancelReason"] == "ORDER_EXPIRED"
    stale = session.post_order(
        python_order(session.wallet, session.fields(price="46000000000000", signed_at=now_ms() - 61_000))
    )
    assert stale.status_code == 202
    assert settle(fake, stale.json()["orderHash"], "CANCELLED")["cancelReason"] == "SIGNED_AT_TOO_OLD"
    soon = session.place("LIMIT", price=46_000.0, quantity=0.01, expires=now_ms() + 400)
    settle(fake, soon, "OPEN")
    settle(fake, soon, "EXPIRED")
    assert cancellation(stream, soon)["cancellationReason"] == "ORDER_EXPIRED"


def test_a_duplicate_order_hash_is_refused(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    body = python_order(session.wallet, session.fields(price="46000000000000", quantity="10000000"))
    first, second = session.post_order(body), session.post_order(body)
    assert first.status_code == second.status_code == 202 and first.json() == second.json()
    order_hash = first.json()["orderHash"]
    assert cancellation(stream, order_hash)["cancellationReason"] == "DUPLICATE_ORDER"
    assert list(fake.orders) == [order_hash] and fake.orders[order_hash]["status"] == "OPEN"
    assert fake.refusals[-1] == ("/api/v1/trade/orders", f"duplicate order hash {order_hash}")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"price": "46849050000000"}, "PRICE_OUT_OF_TICK_SIZE"),
        ({"quantity": "10500000"}, "QUANTITY_OUT_OF_STEP_SIZE"),
        ({"quantity": "0"}, "QUANTITY_OUT_OF_BOUND"),
        ({"price": "600000000000000"}, "PRICE_OUT_OF_BOUND"),
        ({"leverage": "30000000000"}, "INVALID_LEVERAGE"),
        ({"symbol": "DOGE-PERP"}, "INVALID_SYMBOL"),
        ({"type": "MARKET"}, "INVALID_INPUT"),
        ({"type": "STOP_LIMIT"}, "INVALID_INPUT"),
        ({"type": "MARKET", "price": "0", "quantity": "11000000000"}, "QUANTITY_OUT_OF_BOUND"),
        ({"type": "TIME_WEIGHTED_AVERAGE_PRICE"}, "INVALID_INPUT"),
    ],
)
def test_orders_breaking_the_market_rules_are_refused_naming_the_problem(
    fake: FakeBluefinPro, session: Session, change: dict[str, str], code: str
) -> None:
    values = {
        "price": "46000000000000",
        "quantity": "10000000",
        "leverage": "3000000000",
        "symbol": BTC,
        **change,
    }
    order_type = values.pop("type", "LIMIT")
    response = session.post_order(python_order(session.wallet, session.fields(**values), order_type))
    assert response.status_code == 400 and response.json()["errorCode"] == code, response.text
    assert fake.orders == {} and fake.refusals[-1][1] == response.json()["message"]


def test_cancel_by_hash_all_of_a_market_and_unknown_hashes(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    one, two, three = (session.place("LIMIT", price=p, quantity=0.01) for p in (46_000.0, 46_100.0, 46_200.0))
    settle(fake, three, "OPEN")
    cancel = session.client.put(
        "/api/v1/trade/orders/cancel", json={"symbol": BTC, "orderHashes": [one, "e" * 64]}
    )
    assert cancel.status_code == 202 and cancel.content == b""
    assert cancellation(stream, one)["cancellationReason"] == "USER_CANCELLED"
    assert cancellation(stream, "e" * 64)["failureToCancelReason"] == "ORDER_NOT_FOUND"
    assert (
        session.client.put(
            "/api/v1/trade/orders/cancel", json={"symbol": BTC, "orderHashes": ["a"] * 11}
        ).status_code
        == 400
    )
    session.client.put("/api/v1/trade/orders/cancel", json={"symbol": BTC})
    for order_hash in (two, three):
        assert cancellation(stream, order_hash)["cancellationReason"] == "USER_CANCELLED_ALL_ON_MARKET"
    reasons = {f["reason"] for f in stream.events("AccountOrderUpdate") if f["payload"]["orderHash"] == two}
    assert "OrdersForMarketCancelled" in reasons


# --- leverage, margin, liquidation, funding ------------------------------------------------------------
def test_a_leverage_change_cancels_open_orders_but_not_standby_ones(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    limit = session.place("LIMIT", price=46_000.0, quantity=0.01)
    stop = session.place("STOP_MARKET", trigger=47_000.0, quantity=0.01, time_in_force=None)
    settle(fake, stop, "STANDBY")
    put = session.client.put(
        "/api/v1/trade/leverage", json=leverage_request(session.wallet, fake.ids_id, BTC, "5000000000")
    )
    assert put.status_code == 202
    assert cancellation(stream, limit)["cancellationReason"] == "LEVERAGE_UPDATE"
    assert fake.orders[stop]["status"] == "STANDBY"
    assert fake.account(session.wallet.address)["leverage"][BTC] == 5.0
    too_high = leverage_request(
        session.wallet, fake.ids_id, BTC, "23000000000"
    )  # the IMR of 4.5 % allows 22x
    assert session.client.put("/api/v1/trade/leverage", json=too_high).status_code == 202
    failure = stream.wait(lambda f: f.get("event") == "AccountCommandFailureUpdate")["payload"]
    assert (
        failure["reasonCode"] == "INVALID_LEVERAGE"
        and failure["failedCommandType"] == "POSITION_LEVERAGE_UPDATE"
    )
    assert fake.account(session.wallet.address)["leverage"][BTC] == 5.0


def test_isolated_margin_and_the_liquidation_price(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    session.client.put(
        "/api/v1/trade/leverage", json=leverage_request(session.wallet, fake.ids_id, BTC, "5000000000")
    )
    wait_for(lambda: fake.account(session.wallet.address)["leverage"][BTC] == 5.0)
    long_position(fake, session)
    position = fake.account(session.wallet.address)["positions"][BTC]
    margin = PRICE * 0.01 / 5
    assert position["margin"] == pytest.approx(margin, abs=1e-6)
    assert position["liquidation_price"] == pytest.approx((PRICE - margin / 0.01) / (1 - MMR), abs=1e-3)
    add = margin_request(session.wallet, fake.ids_id, BTC, True, str(50 * E9))
    assert session.client.put("/api/v1/trade/adjustIsolatedMargin", json=add).status_code == 202
    wait_for(lambda: fake.account(session.wallet.address)["positions"][BTC]["margin"] > margin + 49)
    assert (
        fake.account(session.wallet.address)["positions"][BTC]["liquidation_price"]
        < position["liquidation_price"]
    )
    too_much = margin_request(session.wallet, fake.ids_id, BTC, False, str(140 * E9))
    session.client.put("/api/v1/trade/adjustIsolatedMargin", json=too_much)
    failure = stream.wait(lambda f: f.get("event") == "AccountCommandFailureUpdate")["payload"]
    assert failure["failedCommandTypeCode"] == "POSITION_ISOLATED_MARGIN_UPDATE"
    (listed,) = session.client.get("/api/v1/account").json()["positions"]
    assert (
        listed["isolatedMarginE9"] == str(round((margin + 50) * E9))
        and listed["clientSetLeverageE9"] == "5000000000"
    )


def test_a_position_is_liquidated_when_the_price_crosses_its_liquidation_price(
    fake: FakeBluefinPro, session: Session
) -> None:
    session.client.put(
        "/api/v1/trade/leverage", json=leverage_request(session.wallet, fake.ids_id, BTC, "20000000000")
    )
    wait_for(lambda: fake.account(session.wallet.address)["leverage"][BTC] == 20.0)
    long_position(fake, session)
    liquidation = fake.account(session.wallet.address)["positions"][BTC]["liquidation_price"]
    fake.set_price(BTC, liquidation + 50)
    assert BTC in fake.account(session.wallet.address)["positions"]
    fake.set_price(BTC, liquidation - 50)
    account = fake.account(session.wallet.address)
    assert account["positions"] == {}
    margin, fee = PRICE * 0.01 / 20, PRICE * 0.01 * TAKER_FEE
    assert account["balance"] == pytest.approx(10_000 - margin - fee, abs=1e-6)
    latest = session.client.get("/api/v1/account/trades").json()[0]
    assert latest["tradeType"] == "LIQUIDATION" and latest["side"] == "SHORT"


def test_funding_is_paid_at_the_mark_and_recorded(
    fake: FakeBluefinPro, session: Session, stream: StreamClient
) -> None:
    long_position(fake, session)
    shorter = Session.open(fake.url, fake.ids_id)
    settle(fake, shorter.place("MARKET", quantity=0.02, side="SHORT"), "FILLED")
    before = fake.account(session.wallet.address)["balance"]
    fake.pay_funding(BTC, 0.001)
    payment = PRICE * 0.01 * 0.001
    assert fake.account(session.wallet.address)["balance"] == pytest.approx(before - payment, abs=1e-9)
    (paid,) = session.client.get("/api/v1/account/fundingRateHistory").json()["data"]
    assert paid["rateE9"] == "1000000" and paid["paymentAmountE9"] == str(-round(payment * E9))
    assert paid["positionSide"] == "LONG" and paid["symbol"] == BTC
    (received,) = shorter.client.get("/api/v1/account/fundingRateHistory").json()["data"]
    assert int(received["paymentAmountE9"]) == 2 * round(payment * E9)
    (position,) = session.client.get("/api/v1/account").json()["positions"]
    assert position["fundingRatePaymentAllTimeE9"] == str(-round(payment * E9))
    transaction = stream.wait(
        lambda f: f.get("event") == "AccountTransactionUpdate" and f["reason"] == "FundingRatePayment"
    )
    assert transaction["payload"]["transactionType"] == "FUNDING_FEE"
    shorter.close()


# --- market data ---------------------------------------------------------------------------------------
def _candles(fake: FakeBluefinPro, **params: Any) -> list[list[str]]:
    query = {"symbol": BTC, "interval": "1m", "type": "Last", **params}
    response = httpx.get(fake.url + "/v1/exchange/candlesticks", params=query)
    assert response.status_code == 200, response.text
    rows: list[list[str]] = response.json()
    return rows


def test_the_last_candle_is_the_open_one_and_advance_releases_more(fake: FakeBluefinPro) -> None:
    rows = _candles(fake, limit=3)
    opening = fake.engine.candles[BTC][300]
    assert len(rows) == 3 and rows[-1][0] == str(opening.start) and rows[-1][4] == str(round(PRICE * E9))
    assert _candles(fake, endTimeAtMillis=opening.start + 10 * 60_000, limit=3)[-1][0] == str(opening.start)
    fake.advance(2)
    after = _candles(fake, limit=3)
    assert after[-1][0] == str(fake.engine.candles[BTC][302].start) and after[0] == rows[-1]
    assert after[-1][4] == str(round(fake.price(BTC) * E9))
    first = _candles(fake, startTimeAtMillis=fake.engine.candles[BTC][0].start, limit=2, page=2)
    assert [r[0] for r in first] == [str(fake.engine.candles[BTC][i].start) for i in (2, 3)]
    hour = _candles(fake, interval="1h", limit=1)[0]
    minutes = [c for c in fake.engine.candles[BTC][: fake.engine.cursor + 1] if c.start >= int(hour[0])]
    assert hour[2] == str(max(c.high for c in minutes)) and hour[6] == str(int(hour[0]) + 3_600_000 - 1)


def test_the_candle_stream_updates_the_open_candle_and_closes_it_once(fake: FakeBluefinPro) -> None:
    stream = market_stream(fake.url, BTC, ["Candlestick_1m_Last", "Mark_Price"])
    assert stream.ack["success"] is True
    snapshot = stream.wait(lambda f: f.get("event") == "CandlestickUpdate")["payload"]
    fake.set_price(BTC, 46_900.0)
    moved = stream.wait(
        lambda f: f.get("event") == "CandlestickUpdate" and f["payload"]["closePriceE9"] == "46900000000000"
    )
    assert (
        moved["payload"]["startTime"] == snapshot["startTime"]
        and moved["payload"]["highPriceE9"] == "46900000000000"
    )
    fake.advance(1)
    wait_for(lambda: len(stream.events("CandlestickUpdate")) >= 4)
    closed, opened = (f["payload"] for f in stream.events("CandlestickUpdate")[2:4])
    assert closed["startTime"] == snapshot["startTime"] and closed["closePriceE9"] == "46900000000000"
    assert opened["startTime"] == snapshot["startTime"] + 60_000
    mark = stream.wait(
        lambda f: (
            f.get("event") == "MarkPriceUpdate"
            and f["payload"]["priceE9"] == str(round(fake.price(BTC) * E9))
        )
    )
    assert mark["payload"]["source"] == "Mark"
    stream.close()


def test_shift_to_now_puts_the_open_candle_at_this_minute() -> None:
    fake = FakeBluefinPro(shift_to_now=True, candles_per_second=20)
    started = time.monotonic()
    fake.start()
    try:
        rows = _candles(fake, limit=2)
        # at start the open candle is this minute; then it runs 20 candles a second ahead (a loaded machine
        # answers late), and unshifted it would be in 2022
        ahead_ms = 60_000 * (1 + int(20 * (time.monotonic() - started)))
        assert abs(int(rows[-1][0]) - now_ms() // 60_000 * 60_000) <= ahead_ms
        wait_for(lambda: fake.engine.cursor >= 303, 2.0)  # it advances by itself
    finally:
        fake.stop()


def test_market_data_answers(fake: FakeBluefinPro) -> None:
    ticker = httpx.get(fake.url + "/v1/exchange/ticker", params={"symbol": "ETH-PERP"}).json()
    assert ticker["markPriceE9"] == ticker["lastPriceE9"] == str(round(fake.price("ETH-PERP") * E9))
    assert fake.price("ETH-PERP") == pytest.approx(PRICE / 20, abs=0.01)
    depth = httpx.get(fake.url + "/v1/exchange/depth", params={"symbol": BTC, "limit": 5}).json()
    assert len(depth["bidsE9"]) == len(depth["asksE9"]) == 5
    assert int(depth["bestBidPriceE9"]) < round(PRICE * E9) < int(depth["bestAskPriceE9"])
    info = httpx.get(fake.url + "/v1/exchange/info").json()
    assert info["contractsConfig"]["idsId"] == fake.ids_id and len(fake.ids_id) == 66
    btc = next(m for m in info["markets"] if m["symbol"] == BTC)
    assert (btc["tickSizeE9"], btc["stepSizeE9"], btc["initialMarginRatioE9"]) == (
        "100000000",
        "1000000",
        "45000000",
    )
    funding = httpx.get(
        fake.url + "/v1/exchange/fundingRateHistory", params={"symbol": BTC, "limit": 3}
    ).json()
    times = [r["fundingTimeAtMillis"] for r in funding]
    assert times[0] - times[1] == times[1] - times[2] == 3_600_000 and times[0] % 3_600_000 == 0
    again = FakeBluefinPro().engine.funding_history(BTC)[:3]
    assert [r["fundingRateE9"] for r in again] == [r["fundingRateE9"] for r in funding]  # deterministic
    history = fake.engine.funding_history(BTC)  # the hours since the data starts (5 at the default cursor)
    assert len(history) >= 5 and len({r["fundingRateE9"] for r in history}) == len(history)  # and varying


# --- streams -------------------------------------------------------------------------------------------
def test_the_acknowledgement_comes_first_and_pings_are_answered(
    fake: FakeBluefinPro, session: Session
) -> None:
    market = market_stream(fake.url, BTC, ["Ticker", "Mark_Price"])
    assert market.ack == {"success": True, "message": market.ack["message"]}
    market.wait(lambda f: f.get("event") == "TickerUpdate")  # the snapshot comes after the ack
    assert market.ws.ping(b"Ping").wait(2.0)
    account = account_stream(fake.url, session.token, ["AccountOrderUpdate"])
    assert account.ack["success"] is True
    session.place("LIMIT", price=46_000.0, quantity=0.01)
    account.wait(lambda f: f.get("event") == "AccountOrderUpdate")
    assert ("account", "AccountOrderUpdate") in fake.stream_events
    assert ("market", "TickerUpdate") in fake.stream_events
    market.ws.send(
        json.dumps({"method": "Unsubscribe", "dataStreams": [{"symbol": BTC, "streams": ["Ticker"]}]})
    )
    wait_for(lambda: any(f.get("success") is True for f in market.frames))  # the ack of the Unsubscribe
    count = len(market.events("TickerUpdate"))
    fake.set_price(BTC, 46_000.0)
    market.wait(lambda f: f.get("event") == "MarkPriceUpdate" and f["payload"]["priceE9"] == "46000000000000")
    time.sleep(0.1)  # the still-subscribed stream moved; the unsubscribed one stays silent
    assert len(market.events("TickerUpdate")) == count
    market.close()
    account.close()


def test_the_account_stream_takes_the_token_from_the_subscription_too(
    fake: FakeBluefinPro, session: Session
) -> None:
    anonymous = StreamClient.open(
        fake.url, "/ws/account", {"method": "Subscribe", "dataStreams": ["AccountUpdate"]}
    )
    assert anonymous.ack["success"] is False
    assert anonymous.closed.wait(3.0)
    message = {"method": "Subscribe", "dataStreams": ["AccountUpdate"], "authToken": session.token}
    with_token = StreamClient.open(fake.url, "/ws/account", message)
    assert with_token.ack["success"] is True
    fake.fund(session.wallet.address, 5.0)
    assert with_token.wait(lambda f: f.get("reason") == "Deposit")["event"] == "AccountUpdate"
    with_token.close()


def test_dropped_streams_reconnect_and_refused_upgrades(fake: FakeBluefinPro, session: Session) -> None:
    account, market = account_stream(fake.url, session.token), market_stream(fake.url, BTC, ["Mark_Price"])
    fake.drop_streams()
    assert account.closed.wait(3.0) and market.closed.wait(3.0)
    fake.refuse_streams = True
    with pytest.raises(InvalidStatus) as refused:
        market_stream(fake.url, BTC, ["Mark_Price"])
    assert refused.value.response.status_code == 503
    fake.refuse_streams = False
    again = account_stream(fake.url, session.token)
    session.place("MARKET", quantity=0.01)
    assert again.wait(lambda f: f.get("event") == "AccountTradeUpdate")["reason"] == "OrderMatched"
    again.close()


# --- misbehaviour --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["429", "500", "503"])
def test_error_answers_for_the_next_requests_of_a_path(fake: FakeBluefinPro, kind: str) -> None:
    fake.misbehave(kind, path="/v1/exchange/ticker", times=2, retry_after_s=0.5)
    url = fake.url + "/v1/exchange/ticker?symbol=BTC-PERP"
    first, second = httpx.get(url), httpx.get(url)
    assert first.status_code == second.status_code == int(kind)
    assert first.json()["message"]
    if kind == "429":
        assert first.headers["Retry-After"] == "0.5"
    assert httpx.get(fake.url + "/v1/exchange/tickers").status_code == 200  # another path: unaffected
    assert httpx.get(url).status_code == 200  # two times, then well again


def test_a_refused_order_post_creates_nothing_and_the_retry_goes_through(
    fake: FakeBluefinPro, session: Session
) -> None:
    fake.misbehave("500", path="/api/v1/trade/orders")
    body = python_order(session.wallet, session.fields(quantity="10000000"), "MARKET")
    assert session.post_order(body).status_code == 500
    assert fake.orders == {}
    retry = session.post_order(body)
    assert retry.status_code == 202 and settle(fake, retry.json()["orderHash"], "FILLED")
    assert len(fake.order_requests) == 2 and fake.order_requests[0] == fake.order_requests[1]


def test_a_timeout_hangs_then_closes(fake: FakeBluefinPro) -> None:
    fake.misbehave("timeout", path="/v1/exchange/info")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(fake.url + "/v1/exchange/info", timeout=0.3)
    fake.timeout_hang_s = 0.3
    fake.misbehave("timeout")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(fake.url + "/v1/exchange/depth?symbol=BTC-PERP", timeout=5.0)
    assert httpx.get(fake.url + "/v1/exchange/info").status_code == 200


def test_malformed_and_dropped_answers(fake: FakeBluefinPro, session: Session) -> None:
    fake.misbehave("malformed", path="/api/v1/account")
    malformed = session.client.get("/api/v1/account")
    assert malformed.status_code == 200 and malformed.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        malformed.json()
    fake.misbehave("drop", path="/api/v1/trade/orders")
    with pytest.raises(httpx.RemoteProtocolError):
        session.post_order(python_order(session.wallet, session.fields(quantity="10000000"), "MARKET"))
    assert fake.orders == {} and len(fake.order_requests) == 1
    with pytest.raises(ValueError, match="unknown misbehaviour"):
        fake.misbehave("slow")


# --- standalone ----------------------------------------------------------------------------------------
def test_it_runs_alone_and_is_driven_through_the_admin_endpoints() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.bluefin_pro", "--port", str(port), "--balance", "500"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"fake Bluefin Pro on http://127.0.0.1:{port}"
        url = f"http://127.0.0.1:{port}"
        rows = httpx.get(
            url + "/v1/exchange/candlesticks", params={"symbol": BTC, "interval": "1m", "type": "Last"}
        ).json()
        assert abs(int(rows[-1][0]) - now_ms() // 60_000 * 60_000) <= 60_000  # shifted to now
        assert httpx.post(url + "/_fake/advance", json={"minutes": 3}).json()[BTC] == 46_849.0
        assert httpx.post(url + "/_fake/price", json={"symbol": BTC, "price": 45_000}).json()[BTC] == 45_000.0
        session = Session.open(url, httpx.get(url + "/v1/exchange/info").json()["contractsConfig"]["idsId"])
        settle_remote = session.place("MARKET", quantity=0.001)
        state = wait_for(
            lambda: (
                (s := httpx.get(url + "/_fake/state").json())["orders"][settle_remote]["status"] == "FILLED"
                and s
            )
        )
        assert state["accounts"][session.wallet.address]["balance"] == pytest.approx(500 - 45 * TAKER_FEE)
        assert state["order_requests"] == 1 and state["cursor"] == 303
        httpx.post(url + "/_fake/misbehave", json={"kind": "503", "path": "/v1/exchange/tickers"})
        assert httpx.get(url + "/v1/exchange/tickers").status_code == 503
        httpx.post(url + "/_fake/funding", json={"symbol": BTC, "rate": 0.01})
        assert (
            session.client.get("/api/v1/account/fundingRateHistory").json()["data"][0]["rateE9"] == "10000000"
        )
        assert httpx.post(url + "/_fake/drop-streams").json() == {"dropped": 0}
        session.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0

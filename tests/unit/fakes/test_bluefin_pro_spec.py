"""Every answer of the fake validates against Bluefin's published OpenAPI spec (openapi-core over real HTTP),
every stream frame against the component schemas of websocket-api.yaml; and the validation has teeth: a
copy of an answer with a required field dropped, or a number where the spec wants a string, fails."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_core.validation.request.exceptions import SecurityValidationError

from tests.conftest import wait_for
from tests.fakes.bluefin_pro import FakeBluefinPro
from tests.unit.fakes.bluefin_sdk import (
    E9,
    Session,
    Spec,
    Wallet,
    _Request,
    account_stream,
    frame_errors,
    leverage_request,
    login,
    login_body,
    margin_request,
    market_stream,
    python_order,
)


def _answers(fake: FakeBluefinPro) -> dict[str, httpx.Response]:
    """One answer of every kind the fake gives, from a session that trades a little."""
    trader = Session.open(fake.url, fake.ids_id)
    anonymous = httpx.Client(base_url=fake.url, timeout=5.0)
    out: dict[str, httpx.Response] = {}
    wallet = Wallet.random()
    out["login_v1"] = login(anonymous, wallet)
    out["login_v2"] = login(anonymous, Wallet.random(), v2=True, compact=True)
    body = login_body(wallet.address)
    out["login_401"] = anonymous.post(
        "/auth/token", content=body, headers={"payloadSignature": wallet.sign_v1(b"x")}
    )
    out["login_400"] = anonymous.post("/auth/token", content=body, headers={"payloadSignature": "%%%"})
    web = login_body(wallet.address, audience="web")
    out["login_403"] = anonymous.post(
        "/auth/token", content=web, headers={"payloadSignature": wallet.sign_v1(web)}
    )
    refresh = out["login_v1"].json()["refreshToken"]
    out["refresh"] = anonymous.put("/auth/token/refresh", json={"refreshToken": refresh})
    out["refresh_401"] = anonymous.put("/auth/token/refresh", json={"refreshToken": "nope"})

    market = trader.place("MARKET", quantity=0.01, client_order_id="spec-1")
    wait_for(lambda: fake.orders[market]["status"] == "FILLED")
    trader.place("LIMIT", price=40_000.0, quantity=0.01, client_order_id="spec-2")
    standby = trader.place(
        "STOP_MARKET", trigger=30_000.0, quantity=0.01, side="SHORT", reduce_only=True, time_in_force=None
    )
    fake.pay_funding("BTC-PERP", 0.0001)
    fields = trader.fields(price="40000050000000", quantity="10000000")  # off the 0.1 tick
    out["order_202"] = trader.post_order(python_order(trader.wallet, trader.fields(price="39000000000000")))
    out["order_400"] = trader.post_order(python_order(trader.wallet, fields))
    out["order_401_signature"] = trader.post_order(python_order(Wallet.random(), fields))
    out["order_401_token"] = anonymous.post("/api/v1/trade/orders", json=python_order(trader.wallet, fields))
    wait_for(lambda: len(fake.engine.live) >= 3)
    client = trader.client
    out["account"] = client.get("/api/v1/account")
    out["account_by_address"] = anonymous.get(
        "/api/v1/account", params={"accountAddress": trader.wallet.address}
    )
    out["account_404"] = anonymous.get("/api/v1/account", params={"accountAddress": "0x" + "0" * 64})
    out["account_401"] = anonymous.get("/api/v1/account")
    out["trades"] = client.get(
        "/api/v1/account/trades", params={"symbol": "BTC-PERP", "limit": 10, "page": 1}
    )
    out["trades_401"] = anonymous.get("/api/v1/account/trades")
    out["account_funding"] = client.get("/api/v1/account/fundingRateHistory", params={"limit": 5})
    out["transactions"] = client.get(
        "/api/v1/account/transactions", params={"types": ["TRADING_FEE", "FUNDING_FEE"]}
    )
    out["open_orders"] = client.get("/api/v1/trade/openOrders", params={"symbol": "BTC-PERP"})
    out["standby_orders"] = client.get("/api/v1/trade/standbyOrders")
    out["open_orders_401"] = anonymous.get("/api/v1/trade/openOrders")
    out["leverage_202"] = client.put(
        "/api/v1/trade/leverage", json=leverage_request(trader.wallet, fake.ids_id, "ETH-PERP", "2000000000")
    )
    bad_leverage = leverage_request(trader.wallet, fake.ids_id, "ETH-PERP", "2000000000")
    bad_leverage["signedFields"]["leverageE9"] = "02000000000"
    out["leverage_400"] = client.put("/api/v1/trade/leverage", json=bad_leverage)
    out["margin_202"] = client.put(
        "/api/v1/trade/adjustIsolatedMargin",
        json=margin_request(trader.wallet, fake.ids_id, "BTC-PERP", True, str(E9)),
    )
    out["cancel_202"] = client.put("/api/v1/trade/orders/cancel", json={"symbol": "BTC-PERP"})
    out["cancel_standby"] = client.put(
        "/api/v1/trade/orders/cancel/standby", json={"symbol": "BTC-PERP", "orderHashes": [standby]}
    )
    out["info"] = anonymous.get("/v1/exchange/info")
    out["depth"] = anonymous.get("/v1/exchange/depth", params={"symbol": "BTC-PERP", "limit": 5})
    out["ticker"] = anonymous.get("/v1/exchange/ticker", params={"symbol": "ETH-PERP"})
    out["ticker_404"] = anonymous.get("/v1/exchange/ticker", params={"symbol": "DOGE-PERP"})
    out["tickers"] = anonymous.get("/v1/exchange/tickers")
    out["exchange_trades"] = anonymous.get("/v1/exchange/trades", params={"symbol": "BTC-PERP", "limit": 5})
    out["candles_1m"] = anonymous.get(
        "/v1/exchange/candlesticks",
        params={"symbol": "BTC-PERP", "interval": "1m", "type": "Last", "limit": 5},
    )
    out["candles_1h"] = anonymous.get(
        "/v1/exchange/candlesticks", params={"symbol": "ETH-PERP", "interval": "1h", "type": "Mark"}
    )
    out["funding"] = anonymous.get(
        "/v1/exchange/fundingRateHistory", params={"symbol": "BTC-PERP", "limit": 24}
    )
    trader.close()
    anonymous.close()
    return out


@pytest.fixture(scope="module")
def answers() -> Iterator[dict[str, httpx.Response]]:
    server = FakeBluefinPro()
    server.start()
    yield _answers(server)
    server.stop()


EXPECTED_STATUS = {
    "login_v1": 200,
    "login_v2": 200,
    "login_401": 401,
    "login_400": 400,
    "login_403": 403,
    "refresh": 200,
    "refresh_401": 401,
    "order_202": 202,
    "order_400": 400,
    "order_401_signature": 401,
    "order_401_token": 401,
    "account": 200,
    "account_by_address": 200,
    "account_404": 404,
    "account_401": 401,
    "trades": 200,
    "trades_401": 401,
    "account_funding": 200,
    "transactions": 200,
    "open_orders": 200,
    "standby_orders": 200,
    "open_orders_401": 401,
    "leverage_202": 202,
    "leverage_400": 400,
    "margin_202": 202,
    "cancel_202": 202,
    "cancel_standby": 200,
    "info": 200,
    "depth": 200,
    "ticker": 200,
    "ticker_404": 404,
    "tickers": 200,
    "exchange_trades": 200,
    "candles_1m": 200,
    "candles_1h": 200,
    "funding": 200,
}


@pytest.mark.parametrize("name", list(EXPECTED_STATUS))
def test_every_answer_validates_against_the_spec(
    answers: dict[str, httpx.Response], spec: Spec, name: str
) -> None:
    response = answers[name]
    assert response.status_code == EXPECTED_STATUS[name], response.text
    spec.check(response)


def test_the_answers_carry_data(answers: dict[str, httpx.Response]) -> None:
    """Validation of empty lists would prove little: the lists validated above are not empty."""
    for name in (
        "trades",
        "transactions",
        "open_orders",
        "standby_orders",
        "tickers",
        "exchange_trades",
        "candles_1m",
        "candles_1h",
        "funding",
    ):
        assert answers[name].json(), name
    assert answers["account"].json()["positions"] and answers["account_funding"].json()["data"]
    assert answers["cancel_standby"].json()["orderHashes"]


DROPS: list[tuple[str, list[Any]]] = [
    ("info", ["markets", 0, "tickSizeE9"]),
    ("info", ["contractsConfig", "idsId"]),
    ("info", ["assets", 0, "decimals"]),
    ("account", ["positions", 0, "liquidationPriceE9"]),
    ("account", ["assets", 0, "quantityE9"]),
    ("account", ["marginAvailableE9"]),
    ("ticker", ["estimatedFundingRateE9"]),
    ("depth", ["bestBidPriceE9"]),
    ("login_v1", ["refreshTokenValidForSeconds"]),
    ("refresh", ["accessToken"]),
    ("open_orders", [0, "signerAddress"]),
    ("standby_orders", [0, "orderTimeAtMillis"]),
    ("trades", [0, "quoteQuantityE9"]),
    ("order_202", ["orderHash"]),
    ("funding", [0, "fundingRateE9"]),
    ("account_funding", ["data", 0, "rateE9"]),
    ("order_400", ["message"]),
    ("cancel_standby", ["orderHashes"]),
]


def _drop(body: Any, path: list[Any]) -> Any:
    changed = copy.deepcopy(body)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


@pytest.mark.parametrize(
    ("name", "path"), DROPS, ids=[f"{n}:{'.'.join(str(k) for k in p)}" for n, p in DROPS]
)
def test_an_answer_missing_a_required_field_fails(
    answers: dict[str, httpx.Response], spec: Spec, name: str, path: list[Any]
) -> None:
    response = answers[name]
    spec.check(response, response.json())  # the copy as it came validates...
    with pytest.raises(Exception, match=r"required|not valid|Invalid"):
        spec.check(response, _drop(response.json(), path))  # ...and fails without the field


def test_candle_values_must_be_strings(answers: dict[str, httpx.Response], spec: Spec) -> None:
    rows = answers["candles_1m"].json()
    assert all(isinstance(v, str) for row in rows for v in row) and len(rows[0]) == 9
    numbers = [[int(v) for v in row] for row in rows]  # the spec's own example mixes numbers in
    with pytest.raises(Exception, match=r"not valid|Invalid"):
        spec.check(answers["candles_1m"], numbers)


def test_sdk_form_requests_validate_against_the_spec(fake: FakeBluefinPro, spec: Spec) -> None:
    """The hand-built SDK requests the other tests rely on are what the spec describes (orderHash "" is
    the Python SDK's extra field, allowed by the schema)."""
    trader = Session.open(fake.url, fake.ids_id)
    order = python_order(trader.wallet, trader.fields(price="39000000000000"))
    response = trader.post_order(order)
    spec.api.validate_request(_Request(response.request))
    response = trader.client.put(
        "/api/v1/trade/leverage", json=leverage_request(trader.wallet, fake.ids_id, "BTC-PERP", "3000000000")
    )
    spec.api.validate_request(_Request(response.request))
    anonymous = httpx.post(fake.url + "/api/v1/trade/orders", json=order)
    with pytest.raises(SecurityValidationError):
        spec.api.validate_request(_Request(anonymous.request))
    trader.close()


# --- streams -------------------------------------------------------------------------------------------
MARKET_NAMES = [
    "Recent_Trade",
    "Ticker",
    "Mark_Price",
    "Oracle_Price",
    "Market_Price",
    "Partial_Depth_5",
    "Partial_Depth_20",
    "Diff_Depth_200_ms",
    "Candlestick_1m_Last",
    "Candlestick_5m_Mark",
]


@pytest.fixture(scope="module")
def frames() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Every frame of an account stream and two market streams while a session trades."""
    fake = FakeBluefinPro()
    fake.start()
    trader = Session.open(fake.url, fake.ids_id)
    account = account_stream(
        fake.url,
        trader.token,
        [
            "AccountOrderUpdate",
            "AccountTradeUpdate",
            "AccountPositionUpdate",
            "AccountUpdate",
            "AccountTransactionUpdate",
            "AccountCommandFailureUpdate",
        ],
    )
    market = market_stream(fake.url, "BTC-PERP", MARKET_NAMES)
    tickers = market_stream(fake.url, "", ["Ticker_All"])
    trader.place("MARKET", quantity=0.02, client_order_id="f-1")
    limit = trader.place("LIMIT", price=40_000.0, quantity=0.01)
    trader.place(
        "TAKE_PROFIT_MARKET",
        trigger=60_000.0,
        quantity=0.01,
        side="SHORT",
        reduce_only=True,
        time_in_force=None,
    )
    trader.client.put(
        "/api/v1/trade/orders/cancel", json={"symbol": "BTC-PERP", "orderHashes": [limit, "f" * 64]}
    )
    trader.client.put(
        "/api/v1/trade/leverage", json=leverage_request(trader.wallet, fake.ids_id, "BTC-PERP", "50000000000")
    )
    fake.pay_funding("BTC-PERP", 0.0002)
    fake.advance(6)
    fake.set_price("BTC-PERP", 46_000.0)
    account.wait(lambda f: f.get("event") == "AccountCommandFailureUpdate")
    wait_for(
        lambda: len(tickers.frames) >= 2 and any(f["event"] == "CandlestickUpdate" for f in market.frames)
    )
    yield {
        "ack": [account.ack, market.ack, tickers.ack],
        "account": list(account.frames),
        "market": list(market.frames) + list(tickers.frames),
    }
    for stream in (account, market, tickers):
        stream.close()
    trader.close()
    fake.stop()


def test_subscription_acknowledgements_validate(frames: dict[str, list[dict[str, Any]]], spec: Spec) -> None:
    for ack in frames["ack"]:
        assert ack["success"] is True
        assert frame_errors(spec, "ack", ack) == []


@pytest.mark.parametrize("kind", ["account", "market"])
def test_every_stream_frame_validates(frames: dict[str, list[dict[str, Any]]], spec: Spec, kind: str) -> None:
    problems = {
        json.dumps(f)[:160]: frame_errors(spec, kind, f) for f in frames[kind] if frame_errors(spec, kind, f)
    }
    assert problems == {}


def test_the_frames_cover_every_payload_kind(frames: dict[str, list[dict[str, Any]]]) -> None:
    account = {f["event"] for f in frames["account"]}
    assert account == {
        "AccountOrderUpdate",
        "AccountTradeUpdate",
        "AccountPositionUpdate",
        "AccountUpdate",
        "AccountTransactionUpdate",
        "AccountCommandFailureUpdate",
    }
    orders = [f["payload"] for f in frames["account"] if f["event"] == "AccountOrderUpdate"]
    assert any("cancellationReason" in p for p in orders) and any("filledQuantityE9" in p for p in orders)
    assert any(p.get("failureToCancelReason") == "ORDER_NOT_FOUND" for p in orders)
    market = {f["event"] for f in frames["market"]}
    assert market == {
        "RecentTradesUpdates",
        "TickerUpdate",
        "TickerAllUpdate",
        "MarkPriceUpdate",
        "OraclePriceUpdate",
        "MarketPriceUpdate",
        "CandlestickUpdate",
        "OrderbookPartialDepthUpdate",
        "OrderbookDiffDepthUpdate",
    }


FRAME_DROPS = [
    ("account", "AccountOrderUpdate", "signerAddress"),
    ("account", "AccountTradeUpdate", "trade"),
    ("account", "AccountPositionUpdate", "liquidationPriceE9"),
    ("account", "AccountUpdate", "assets"),
    ("account", "AccountTransactionUpdate", "amountE9"),
    ("account", "AccountCommandFailureUpdate", "failedAtMillis"),
    ("market", "CandlestickUpdate", "numTrades"),
    ("market", "OrderbookPartialDepthUpdate", "depthLevel"),
    ("market", "TickerUpdate", "markPriceE9"),
    ("market", "MarkPriceUpdate", "source"),
    ("market", "RecentTradesUpdates", "trades"),
]


@pytest.mark.parametrize(("kind", "event", "key"), FRAME_DROPS, ids=[f"{e}.{k}" for _, e, k in FRAME_DROPS])
def test_a_frame_missing_a_required_field_fails(
    frames: dict[str, list[dict[str, Any]]], spec: Spec, kind: str, event: str, key: str
) -> None:
    frame = next(f for f in frames[kind] if f["event"] == event and key in f["payload"])
    assert frame_errors(spec, kind, frame) == []
    broken = {**frame, "payload": {k: v for k, v in frame["payload"].items() if k != key}}
    assert frame_errors(spec, kind, broken)
    assert frame_errors(spec, kind, {k: v for k, v in frame.items() if k != "event"})


def test_depth_level_as_the_spec_writes_it_admits_no_value(spec: Spec) -> None:
    """OrderbookPartialDepthUpdate.depthLevel is {type: string, enum: [5, 10, 20]}: neither "5" nor 5
    passes, so the fake sends the string "5" (the research notes' reading) and frame_errors checks the
    string forms."""
    base = {"updatedAtMillis": 1, "symbol": "BTC-PERP", "bidsE9": [], "asksE9": [], "orderbookUpdateId": 1}
    assert spec.schema_errors("OrderbookPartialDepthUpdate", {**base, "depthLevel": "5"})
    assert spec.schema_errors("OrderbookPartialDepthUpdate", {**base, "depthLevel": 5})
    assert (
        frame_errors(
            spec, "market", {"event": "OrderbookPartialDepthUpdate", "payload": {**base, "depthLevel": "5"}}
        )
        == []
    )
    assert frame_errors(
        spec, "market", {"event": "OrderbookPartialDepthUpdate", "payload": {**base, "depthLevel": "7"}}
    )

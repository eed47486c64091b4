"""BluefinProExchange against the fake Bluefin Pro (real HTTP and WebSockets on 127.0.0.1): login and tokens,
every order type, placement that is never retried, reads that back off, stream loss, leverage."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared.bluefin_pro.network import pro_hosts
from shared.bluefin_pro.rest import ProClient
from shared.bluefin_pro.signing import SuiKey
from shared.errors import Fatal, Rejected, UnknownOutcome
from shared.exchange.base import OrderRef
from shared.exchange.bluefin_pro import BluefinProExchange
from shared.models import OrderRequest, OrderResult, OrderStatus, OrderType, Side, TimeInForce
from tests.conftest import wait_for
from tests.fakes.bluefin_pro import FakeBluefinPro


@pytest.fixture
def fake() -> Iterator[FakeBluefinPro]:
    server = FakeBluefinPro()
    server.timeout_hang_s = 3.0
    server.start()
    yield server
    server.stop()


def connect(fake: FakeBluefinPro, stream: bool = True, timeout_s: float = 2.0) -> BluefinProExchange:
    key = SuiKey.from_seed(secrets.token_bytes(32))
    client = ProClient(pro_hosts(fake.url), key, timeout_s=timeout_s, sleep=lambda s: time.sleep(min(s, 0.5)))
    exchange = BluefinProExchange(client, ("BTC-PERP", "ETH-PERP"), stream=stream)
    exchange.start()
    if stream:
        wait_for(lambda: exchange.stream_connected, 5)
    return exchange


@pytest.fixture
def pro(fake: FakeBluefinPro) -> Iterator[BluefinProExchange]:
    exchange = connect(fake)
    yield exchange
    exchange.stop()


def cid() -> str:
    return f"bfa-{secrets.token_hex(16)}"


def place(exchange: BluefinProExchange, request: OrderRequest) -> OrderResult:
    prepared = exchange.prepare_order(request)
    result = exchange.place_order(request)
    assert result.exchange_id == prepared.exchange_id  # what was recorded is what went out
    return result


def ref_of(request: OrderRequest, exchange_id: str | None, acknowledged: bool = True) -> OrderRef:
    return OrderRef(request.client_id, request.symbol, request.side, request.quantity, exchange_id,
                    acknowledged, datetime.now(UTC), request.order_type.has_trigger)  # fmt: skip


def test_login_signs_in_refreshes_before_expiry_and_logs_in_again_on_401(fake: FakeBluefinPro) -> None:
    fake.access_ttl_s = 2.0
    pro = connect(fake, stream=False)
    try:
        assert fake.logins == 1 and pro.client.logins == 1
        assert pro.account().equity == pytest.approx(10_000.0)
        time.sleep(1.2)  # past half of the token's life (and the one-second account cache)
        pro.positions()  # refreshed first, not a new login
        assert pro.client.refreshes == 1 and fake.refreshes == 1 and fake.logins == 1
        fake.expire_tokens()
        assert pro.open_orders("BTC-PERP") == []  # 401 -> one login again -> the same request again
        assert fake.logins == 2 and pro.client.logins == 2
        assert not [r for r in fake.refusals if "signature" in r[1].lower()]
    finally:
        pro.stop()


def test_a_key_bluefin_refuses_is_fatal(fake: FakeBluefinPro) -> None:
    fake.signed_at_window_s = -1.0  # every login is "too old": refused
    client = ProClient(pro_hosts(fake.url), SuiKey.from_seed(secrets.token_bytes(32)), timeout_s=2)
    exchange = BluefinProExchange(client, ("BTC-PERP",), stream=False)
    with pytest.raises(Fatal, match="refused the login"):
        exchange.start()
    client.close()


def test_a_market_order_fills_and_its_fills_come_back_with_the_answer(
    fake: FakeBluefinPro, pro: BluefinProExchange
) -> None:
    request = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01, leverage=3)
    result = place(pro, request)
    assert result.status is OrderStatus.FILLED and result.filled_quantity == pytest.approx(0.01)
    assert result.fills and sum(f.quantity for f in result.fills) == pytest.approx(0.01)
    assert result.average_price == pytest.approx(fake.price("BTC-PERP"), rel=1e-3)
    assert all(f.fee > 0 and f.trade_id.startswith("pro:") for f in result.fills)
    (sent,) = fake.order_requests
    assert sent["clientOrderId"] == request.client_id and sent["type"] == "MARKET"
    assert "timeInForce" not in sent and sent["signedFields"]["priceE9"] == "0"
    (held,) = pro.positions()
    assert held.symbol == "BTC-PERP" and held.quantity == pytest.approx(0.01)
    assert fake.account(pro.client.address)["leverage"]["BTC-PERP"] == 3.0  # set before the first entry


def test_a_limit_rests_then_fills_when_the_price_comes(fake: FakeBluefinPro, pro: BluefinProExchange) -> None:
    price = fake.price("BTC-PERP")
    request = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01, OrderType.LIMIT, price=round(price - 100, 1))
    result = place(pro, request)
    assert result.status is OrderStatus.OPEN and result.filled_quantity == 0
    assert [o.client_id for o in pro.open_orders("BTC-PERP")] == [request.client_id]
    fake.set_price("BTC-PERP", price - 150)
    ref = ref_of(request, result.exchange_id)
    filled = wait_for(
        lambda: (r := pro.get_order(request.client_id, ref)) and r.status is OrderStatus.FILLED and r
    )
    assert filled.fills and filled.fills[0].price == pytest.approx(price - 100, abs=0.05)


def test_protective_stops_and_targets_wait_in_standby_and_trigger(
    fake: FakeBluefinPro, pro: BluefinProExchange
) -> None:
    price = fake.price("BTC-PERP")
    place(pro, OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.02, leverage=3))
    stop = OrderRequest(cid(), "BTC-PERP", Side.SELL, 0.01, OrderType.STOP_MARKET, trigger_price=round(price - 200, 1),
                        reduce_only=True, leverage=3)  # fmt: skip
    target = OrderRequest(cid(), "BTC-PERP", Side.SELL, 0.01, OrderType.TAKE_PROFIT_LIMIT, price=round(price + 300, 1),
                          trigger_price=round(price + 250, 1), reduce_only=True, leverage=3)  # fmt: skip
    placed = {r.client_id: place(pro, r) for r in (stop, target)}
    assert all(r.status is OrderStatus.OPEN for r in placed.values())
    kinds = {o["clientOrderId"]: o["type"] for o in fake.orders.values()}
    assert kinds[stop.client_id] == "STOP_MARKET" and kinds[target.client_id] == "TAKE_PROFIT_LIMIT"
    fake.set_price("BTC-PERP", price + 320)  # the target triggers and its limit fills
    ref = ref_of(target, placed[target.client_id].exchange_id)
    wait_for(lambda: pro.get_order(target.client_id, ref).status is OrderStatus.FILLED)  # type: ignore[union-attr]
    fake.set_price("BTC-PERP", price - 250)  # the stop triggers: a market order
    ref = ref_of(stop, placed[stop.client_id].exchange_id)
    stopped = wait_for(
        lambda: (r := pro.get_order(stop.client_id, ref)) and r.status is OrderStatus.FILLED and r
    )
    assert stopped.filled_quantity == pytest.approx(0.01)
    wait_for(lambda: pro.positions() == [])


def test_bluefins_refusals_are_final_and_say_why(fake: FakeBluefinPro, pro: BluefinProExchange) -> None:
    price = fake.price("BTC-PERP")
    post_only = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01, OrderType.LIMIT, price=round(price + 50, 1),
                             post_only=True)  # fmt: skip
    with pytest.raises(Rejected, match="POST_ONLY_WOULD_TRADE"):
        place(pro, post_only)
    reduce = OrderRequest(cid(), "BTC-PERP", Side.SELL, 0.01, reduce_only=True)
    with pytest.raises(Rejected, match="REDUCE_ONLY_WOULD_OPEN"):
        place(pro, reduce)
    off_step = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.0015)
    with pytest.raises(Rejected, match=r"step 0\.001"):  # checked before it is signed: never sent
        pro.prepare_order(off_step)
    assert [r["clientOrderId"] for r in fake.order_requests] == [post_only.client_id, reduce.client_id]


def test_ioc_takes_what_there_is_and_fok_all_or_nothing(
    fake: FakeBluefinPro, pro: BluefinProExchange
) -> None:
    price = fake.price("BTC-PERP")
    fake.liquidity["BTC-PERP"] = 0.004
    ioc = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01, OrderType.LIMIT, price=round(price + 50, 1),
                       time_in_force=TimeInForce.IOC)  # fmt: skip
    partly = place(pro, ioc)
    assert partly.status is OrderStatus.CANCELED and partly.filled_quantity == pytest.approx(0.004)
    assert fake.order_requests[-1]["timeInForce"] == "IOC"
    fok = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01, OrderType.LIMIT, price=round(price + 50, 1),
                       time_in_force=TimeInForce.FOK)  # fmt: skip
    with pytest.raises(Rejected):
        place(pro, fok)
    assert pro.positions()[0].quantity == pytest.approx(0.004)


def test_a_lost_answer_is_unknown_outcome_and_the_order_is_found_again_not_resent(
    fake: FakeBluefinPro, pro: BluefinProExchange
) -> None:
    fake.hold_answer_s = 3.0  # Bluefin takes and fills the order; the answer comes after our timeout
    request = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01)
    pro.prepare_order(request)
    with pytest.raises(UnknownOutcome):
        pro.place_order(request)
    fake.hold_answer_s = 0.0
    found = wait_for(lambda: pro.get_order(request.client_id, ref_of(request, None, acknowledged=False)))
    assert found.status is OrderStatus.FILLED and found.filled_quantity == pytest.approx(0.01)
    assert len(fake.order_requests) == 1


@pytest.mark.parametrize("kind", ["500", "drop", "malformed"])
def test_placement_answered_badly_is_unknown_outcome(
    fake: FakeBluefinPro, pro: BluefinProExchange, kind: str
) -> None:
    fake.misbehave(kind, "/api/v1/trade/orders")
    request = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01)
    pro.prepare_order(request)
    with pytest.raises(UnknownOutcome):
        pro.place_order(request)
    assert (
        pro.get_order(request.client_id, ref_of(request, None, acknowledged=False)) is None
        or kind == "malformed"
    )


def test_a_429_on_placement_means_not_placed_and_reads_wait_for_retry_after(
    fake: FakeBluefinPro, pro: BluefinProExchange
) -> None:
    fake.misbehave("429", "/api/v1/trade/orders", retry_after_s=0.4)
    request = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01)
    pro.prepare_order(request)
    with pytest.raises(Rejected, match="not placed"):
        pro.place_order(request)
    assert fake.orders == {}
    # inside the Retry-After window nothing is sent; a read waits it out and goes through
    before = len(fake.order_requests)
    started = time.monotonic()
    assert pro.account().equity == pytest.approx(10_000.0)
    assert time.monotonic() - started >= 0.3
    assert len(fake.order_requests) == before
    fake.misbehave("429", "/api/v1/account", times=2, retry_after_s=0.1)
    pro._account = None
    assert pro.account().equity == pytest.approx(10_000.0)  # retried twice, then answered


def test_with_the_stream_down_outcomes_come_from_rest(fake: FakeBluefinPro, pro: BluefinProExchange) -> None:
    fake.refuse_streams = True
    fake.drop_streams()
    wait_for(lambda: not pro.stream_connected)
    fake.fill_delay_s = 0.3  # the fill happens after the answer
    request = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01)
    result = place(pro, request)
    assert result.status in (OrderStatus.OPEN, OrderStatus.FILLED)
    assert pro.drain_changed_orders() is None  # the stream is down: look at everything
    ref = ref_of(request, result.exchange_id)
    filled = wait_for(
        lambda: (r := pro.get_order(request.client_id, ref)) and r.status is OrderStatus.FILLED and r
    )
    assert filled.fills
    fake.refuse_streams = False
    wait_for(lambda: pro.stream_connected, 10)  # reconnected and subscribed again


def test_the_stream_reports_fills_that_come_later_and_wakes_the_listener(
    fake: FakeBluefinPro, pro: BluefinProExchange
) -> None:
    woken: list[float] = []
    pro.set_listener(lambda: woken.append(time.monotonic()))
    pro.drain_changed_orders()  # the first full pass after connecting: from now on the stream is trusted
    fake.fill_delay_s = 1.5
    request = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01)
    result = place(pro, request)
    assert result.status is OrderStatus.OPEN  # answered before it filled
    filled_after = time.monotonic()
    wait_for(lambda: [t for t in woken if t >= filled_after], 6)  # the stream told of the fill, later
    wait_for(lambda: pro._orders[request.client_id].final, 6)
    fake.misbehave("500", "/api/v1", times=1000)  # REST cannot help: what we know came from the stream
    after = wait_for(
        lambda: (r := pro.get_order(request.client_id)) and r.status is OrderStatus.FILLED and r, 6
    )
    assert after.fills and after.filled_quantity == pytest.approx(0.01)
    assert request.client_id in (pro.drain_changed_orders() or set())
    assert pro.revision > 0


def test_cancels_of_resting_and_standby_orders(fake: FakeBluefinPro, pro: BluefinProExchange) -> None:
    price = fake.price("BTC-PERP")
    limit = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01, OrderType.LIMIT, price=round(price - 500, 1))
    stop = OrderRequest(
        cid(), "BTC-PERP", Side.BUY, 0.01, OrderType.STOP_MARKET, trigger_price=round(price + 500, 1)
    )
    placed = {r.client_id: place(pro, r) for r in (limit, stop)}
    for request in (limit, stop):
        ref = ref_of(request, placed[request.client_id].exchange_id)
        cancelled = pro.cancel_order(request.client_id, ref)
        assert cancelled.status is OrderStatus.CANCELED
    assert pro.open_orders() == []
    with pytest.raises(Rejected, match="not open"):
        pro.cancel_order(limit.client_id)


def test_leverage_is_set_only_while_flat_and_nothing_works(
    fake: FakeBluefinPro, pro: BluefinProExchange
) -> None:
    pro.set_leverage("ETH-PERP", 5)
    assert fake.account(pro.client.address)["leverage"]["ETH-PERP"] == 5.0
    price = fake.price("ETH-PERP")
    resting = OrderRequest(
        cid(), "ETH-PERP", Side.BUY, 0.1, OrderType.LIMIT, price=round(price * 0.9, 2), leverage=5
    )
    place(pro, resting)
    with pytest.raises(Rejected, match="would cancel the orders working"):
        pro.set_leverage("ETH-PERP", 7)
    assert fake.orders[next(iter(fake.orders))]["status"] == "OPEN"  # not cancelled by a leverage change
    with pytest.raises(Rejected, match=r"outside 1\.\.22"):
        pro.set_leverage("ETH-PERP", 40)
    place(pro, OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01, leverage=4))
    with pytest.raises(Rejected, match="flat"):
        pro.set_leverage("BTC-PERP", 2)


def test_an_order_placed_before_a_restart_is_found_by_client_id_with_paging(
    fake: FakeBluefinPro, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared.exchange.bluefin_pro.TRADES_PAGE", 2)  # six trades: three pages and more
    first = connect(fake, stream=False)
    requests = [
        OrderRequest(cid(), "BTC-PERP", Side.BUY if i % 2 == 0 else Side.SELL, 0.001) for i in range(6)
    ]
    results = {r.client_id: place(first, r) for r in requests}
    first.stop()
    again = BluefinProExchange(ProClient(pro_hosts(fake.url), first.client.key, timeout_s=2), ("BTC-PERP",),
                               stream=False)  # fmt: skip
    again.start()
    try:
        for request in requests:
            found = again.get_order(
                request.client_id, ref_of(request, results[request.client_id].exchange_id)
            )
            assert found is not None and found.status is OrderStatus.FILLED
            assert [f.trade_id for f in found.fills] == [f.trade_id for f in results[request.client_id].fills]
        unknown = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.001)
        assert again.get_order(unknown.client_id, ref_of(unknown, None, acknowledged=False)) is None
    finally:
        again.stop()


def test_a_fill_missed_while_the_stream_was_down_is_found_after_it_reconnects(
    fake: FakeBluefinPro, pro: BluefinProExchange
) -> None:
    pro.drain_changed_orders()  # the full pass after connecting
    price = fake.price("BTC-PERP")
    request = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01, OrderType.LIMIT, price=round(price - 100, 1))
    placed = place(pro, request)
    wait_for(lambda: pro._orders[request.client_id].heard_at > 0, 5)
    fake.refuse_streams = True
    fake.drop_streams()
    wait_for(lambda: not pro.stream_connected, 5)
    fake.set_price("BTC-PERP", price - 200)  # it fills while nobody listens
    fake.refuse_streams = False
    wait_for(lambda: pro.stream_connected, 15)
    assert pro.drain_changed_orders() is None  # after a reconnect: look at everything again
    found = pro.get_order(request.client_id, ref_of(request, placed.exchange_id))
    assert found is not None and found.status is OrderStatus.FILLED and found.fills


def _order_message(tracked_request: OrderRequest, order_hash: str, **payload: object) -> dict[str, object]:
    return {"event": "AccountOrderUpdate", "reason": "OrderCancelled",
            "payload": {"orderHash": order_hash, "clientOrderId": tracked_request.client_id,
                        "symbol": tracked_request.symbol, **payload}}  # fmt: skip


def test_statuses_only_move_forward_whatever_order_the_reports_come_in(
    fake: FakeBluefinPro, pro: BluefinProExchange
) -> None:
    price = fake.price("BTC-PERP")
    request = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01, OrderType.LIMIT, price=round(price - 300, 1))
    placed = place(pro, request)
    ref = ref_of(request, placed.exchange_id)
    pro.get_order(request.client_id, ref)  # a REST view of the market, cached, showing it OPEN
    cancelled = pro.cancel_order(request.client_id, ref)
    assert cancelled.status is OrderStatus.CANCELED
    pro._views.clear()
    for _ in range(3):  # stale views and late "OPEN" reports never bring it back
        pro._on_account_message(_order_message(request, placed.exchange_id, status="OPEN",
                                               quantityE9="10000000", filledQuantityE9="0"))  # fmt: skip
        assert pro.get_order(request.client_id, ref).status is OrderStatus.CANCELED  # type: ignore[union-attr]


def test_a_cancellation_reported_before_the_trade_still_books_the_trade(
    fake: FakeBluefinPro, pro: BluefinProExchange
) -> None:
    request = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01)
    tracked_hash = "ab" * 32
    pro._track_ref(ref_of(request, tracked_hash))
    # Bluefin cancels the rest of a partly filled market order; the trade's report comes after
    pro._on_account_message(_order_message(request, "0x" + tracked_hash.upper(),
                                           cancellationReason="INSUFFICIENT_LIQUIDITY", createdAtMillis=1,
                                           accountAddress="0x1", remainingQuantityE9="6000000"))  # fmt: skip
    tracked = pro._orders[request.client_id]
    assert tracked.final and not tracked.refused  # 0.004 of 0.01 traded: not a refusal
    pro._on_account_message({"event": "AccountTradeUpdate", "reason": "OrderMatched", "payload": {"trade": {
        "id": "777", "orderHash": "0x" + tracked_hash, "symbol": "BTC-PERP", "side": "LONG",
        "priceE9": "46000000000000", "quantityE9": "4000000", "quoteQuantityE9": "1", "tradingFeeE9": "64400000",
        "executedAtMillis": 1_700_000_000_000}}})  # fmt: skip
    result = pro.get_order(request.client_id)
    assert result is not None and result.filled_quantity == pytest.approx(0.004)
    assert [f.trade_id for f in result.fills] == ["pro:777"] and result.fills[0].fee == pytest.approx(0.0644)
    assert request.client_id in (pro._changed)


def test_a_token_that_cannot_be_had_means_the_order_was_not_sent(fake: FakeBluefinPro) -> None:
    fake.access_ttl_s = 2.0
    pro = connect(fake, stream=False)
    try:
        time.sleep(1.1)  # the token is due for a refresh
        fake.misbehave("500", "/auth/token/refresh")
        request = OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01)
        pro._prepared[request.client_id] = __import__("shared.bluefin_pro.orders", fromlist=["x"]).sign_order(
            request, pro.client.key, pro.ids_id, 3, True, datetime.now(UTC), 60, 86_400
        )  # fmt: skip
        with pytest.raises(Rejected, match="not placed: not sent: no access token"):
            pro.place_order(request)
        assert fake.order_requests == []
    finally:
        pro.stop()


def test_placing_an_order_that_was_not_prepared_is_refused(pro: BluefinProExchange) -> None:
    with pytest.raises(Fatal, match="not prepared"):
        pro.place_order(OrderRequest(cid(), "BTC-PERP", Side.BUY, 0.01))

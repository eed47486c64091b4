"""The engine on Bluefin Pro (the fake, over real HTTP and WebSockets): fills that arrive after the 202 are
protected the moment they are known, partial fills too, with the account stream up or down; an order in
flight blocks a second entry; an order committed but never seen by Bluefin is settled, not left LOST."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from agent.analysis.follow import FollowAnalyst
from agent.engine.engine import Engine
from agent.journal.events import Journal
from agent.risk.presets import PRESETS
from shared.bluefin_pro.network import pro_hosts
from shared.bluefin_pro.rest import ProClient
from shared.bluefin_pro.signing import SuiKey
from shared.db import Database, DecisionRow, OrderRow, SignalRow
from shared.exchange.bluefin_pro import BluefinProExchange
from shared.marketdata.bluefin_pro import BluefinProFeed, BluefinProMarketData
from tests.conftest import wait_for
from tests.fakes.bluefin_pro import FakeBluefinPro


class Events:
    def publish(self, name: str, data: dict[str, Any]) -> None:
        return None


@pytest.fixture
def fake() -> Iterator[FakeBluefinPro]:
    server = FakeBluefinPro(symbols=("BTC-PERP",))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db(tmp_path: Any) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'pro.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def engine(fake: FakeBluefinPro, db: Database) -> Iterator[Engine]:
    key = SuiKey.from_seed(secrets.token_bytes(32))
    exchange = BluefinProExchange(ProClient(pro_hosts(fake.url), key, timeout_s=3), ("BTC-PERP",))
    exchange.start()
    hub = BluefinProMarketData(ProClient(pro_hosts(fake.url), timeout_s=3), ("BTC-PERP",))
    hub.start()
    engine = Engine(
        db=db, exchange=exchange, analyst=FollowAnalyst(), feeds=[BluefinProFeed(hub, "BTC-PERP")],
        journal=Journal(Events()),  # type: ignore[arg-type]
        policy=PRESETS["moderate"], candle_interval_s=3600.0,  # no candle step drives anything here
    )  # fmt: skip
    wait_for(lambda: exchange.stream_connected, 5)
    yield engine  # tests either start its thread (which prepares it) or prepare it themselves
    engine.stop()
    exchange.stop()
    hub.stop()


def add_buy(db: Database, key: str, price: float) -> int:
    with db.session() as session:
        row = SignalRow(
            idempotency_key=key,
            source="tradingview",
            symbol="BTC-PERP",
            action="buy",
            stop_loss=round(price - 400, 1),
            take_profit=round(price + 900, 1),
            raw={},
        )
        session.add(row)
        session.flush()
        return row.id


def orders(db: Database, role: str | None = None) -> list[OrderRow]:
    with db.session() as session:
        query = select(OrderRow).order_by(OrderRow.id)
        if role is not None:
            query = query.where(OrderRow.role == role)
        return list(session.scalars(query))


def standby(fake: FakeBluefinPro) -> list[dict[str, Any]]:
    return [o for o in fake.orders.values() if o["status"] == "STANDBY"]


def test_a_fill_that_comes_after_the_answer_is_protected_at_once(
    fake: FakeBluefinPro, engine: Engine, db: Database
) -> None:
    fake.fill_delay_s = 1.0
    engine.start()
    add_buy(db, "late", fake.price("BTC-PERP"))
    engine.nudge()
    wait_for(lambda: orders(db, "entry") and orders(db, "entry")[0].status != "PENDING_SUBMIT", 10)
    (entry,) = orders(db, "entry")
    assert entry.exchange_id and entry.expires_at is not None and entry.signed_at is not None
    filled_by = time.monotonic() + 1.0
    (stop,) = wait_for(lambda: orders(db, "stop_loss"), 6)
    assert time.monotonic() < filled_by + 3.0  # seconds after the fill, not at the next candle (an hour)
    assert stop.order_type == "STOP_MARKET" and stop.reduce_only

    # the stream may bring the fill in pieces: the stop is placed for what filled and follows the rest
    def protected() -> bool:
        (entry,) = orders(db, "entry")
        stops = [o for o in orders(db, "stop_loss") if o.status not in ("CANCELED", "REJECTED")]
        return entry.status == "FILLED" and sum(o.quantity for o in stops) == pytest.approx(
            entry.filled_quantity
        )

    wait_for(protected, 5)
    stop = [o for o in orders(db, "stop_loss") if o.status not in ("CANCELED", "REJECTED")][-1]
    wait_for(lambda: [o for o in standby(fake) if o["clientOrderId"] == stop.client_id], 5)
    assert len([r for r in fake.order_requests if r["type"] == "MARKET"]) == 1


def test_a_partial_fill_is_protected_for_what_filled(
    fake: FakeBluefinPro, engine: Engine, db: Database
) -> None:
    fake.liquidity["BTC-PERP"] = 0.004  # the market order takes 0.004, the rest is cancelled
    engine.start()
    add_buy(db, "partial", fake.price("BTC-PERP"))
    engine.nudge()
    (stop,) = wait_for(lambda: orders(db, "stop_loss"), 6)
    (entry,) = orders(db, "entry")
    assert entry.status == "CANCELED" and entry.filled_quantity == pytest.approx(0.004)
    assert stop.quantity == pytest.approx(0.004)
    assert engine.exchange.positions()[0].quantity == pytest.approx(0.004)


def test_with_the_account_stream_down_fills_are_found_over_rest_and_protected(
    fake: FakeBluefinPro, engine: Engine, db: Database
) -> None:
    fake.refuse_streams = True
    fake.drop_streams()
    exchange = engine.exchange
    assert isinstance(exchange, BluefinProExchange)
    wait_for(lambda: not exchange.stream_connected, 5)
    fake.fill_delay_s = 0.5
    engine.start()
    add_buy(db, "nostream", fake.price("BTC-PERP"))
    engine.nudge()
    wait_for(lambda: orders(db, "stop_loss"), 12)  # the reconciliation pass every 5 s
    assert orders(db, "entry")[0].status == "FILLED"
    assert not exchange.stream_connected


def test_an_entry_in_flight_blocks_a_second_entry(fake: FakeBluefinPro, engine: Engine, db: Database) -> None:
    fake.fill_delay_s = 3.0
    price = fake.price("BTC-PERP")
    engine.prepare()
    add_buy(db, "first", price)
    engine.process_pending_signals()
    add_buy(db, "second", price)
    engine.process_pending_signals()
    with db.session() as session:
        decisions = list(session.scalars(select(DecisionRow).order_by(DecisionRow.id)))
    assert decisions[0].risk_approved and not decisions[1].risk_approved
    assert "is not known yet" in decisions[1].rationale
    assert len(orders(db, "entry")) == 1


def _pending(db: Database, **values: Any) -> str:
    client_id = f"bfa-{secrets.token_hex(16)}"
    with db.session() as session:
        session.add(OrderRow(client_id=client_id, symbol="BTC-PERP", side="BUY", order_type="MARKET",
                             quantity=0.01, status="PENDING_SUBMIT", role="entry", **values))  # fmt: skip
    return client_id


def test_orders_bluefin_never_saw_are_settled_as_never_placed_not_lost(
    fake: FakeBluefinPro, engine: Engine, db: Database
) -> None:
    now = datetime.now(UTC)
    never_signed = _pending(db)
    expired = _pending(db, exchange_id=secrets.token_hex(32), signed_at=now - timedelta(seconds=70),
                       expires_at=now - timedelta(seconds=10))  # fmt: skip
    in_flight = _pending(
        db, exchange_id=secrets.token_hex(32), signed_at=now, expires_at=now + timedelta(seconds=60)
    )
    engine.reconcile()
    by_id = {o.client_id: o for o in orders(db)}
    assert by_id[never_signed].status == "CANCELED" and "never sent" in (by_id[never_signed].reason or "")
    assert by_id[expired].status == "CANCELED" and "signed expiry has passed" in (by_id[expired].reason or "")
    assert by_id[in_flight].status == "PENDING_SUBMIT"  # it may still reach Bluefin: the market waits
    for _ in range(3):
        engine.maintain_orders()
    assert orders(db)[-1].status == "PENDING_SUBMIT"  # never LOST meanwhile
    assert engine._blocked("BTC-PERP", engine._books("BTC-PERP").unresolved).startswith(
        "the outcome of order"
    )
    assert fake.order_requests == []  # nothing was (re)sent


def test_funding_bluefin_settles_is_booked_once_and_shown(
    fake: FakeBluefinPro, engine: Engine, db: Database
) -> None:
    from agent.execution.funding import book_funding
    from shared.db import FundingRow

    engine.prepare()
    add_buy(db, "funded", fake.price("BTC-PERP"))
    engine.process_pending_signals()
    fake.pay_funding("BTC-PERP", 0.0001)  # longs pay
    time.sleep(0.01)
    fake.pay_funding("BTC-PERP", -0.0002)  # longs receive
    now = datetime.now(UTC)
    assert book_funding(engine.store, engine.exchange, engine.journal, now) == 2
    assert book_funding(engine.store, engine.exchange, engine.journal, now) == 0  # each payment once
    with db.session() as session:
        rows = list(session.scalars(select(FundingRow).order_by(FundingRow.time)))
    (entry,) = orders(db, "entry")
    notional = entry.filled_quantity * fake.price("BTC-PERP")
    assert [r.rate for r in rows] == [0.0001, -0.0002]
    assert rows[0].amount == pytest.approx(-0.0001 * notional, rel=1e-3) and rows[1].amount > 0
    assert rows[0].side == "LONG"
    exchange = engine.exchange
    assert isinstance(exchange, BluefinProExchange)
    assert fake.account(exchange.client.address)["positions"]["BTC-PERP"]["funding"] == pytest.approx(
        sum(r.amount for r in rows), abs=1e-6
    )


def test_a_stop_that_fills_while_the_stream_is_down_is_booked_once_it_is_back(
    fake: FakeBluefinPro, engine: Engine, db: Database
) -> None:
    from shared.db import PositionRow

    exchange = engine.exchange
    assert isinstance(exchange, BluefinProExchange)
    engine.start()
    price = fake.price("BTC-PERP")
    add_buy(db, "gap", price)
    engine.nudge()
    (stop,) = wait_for(lambda: [o for o in orders(db, "stop_loss") if o.status == "OPEN"], 10)
    fake.refuse_streams = True
    fake.drop_streams()
    wait_for(lambda: not exchange.stream_connected, 5)
    fake.set_price("BTC-PERP", (stop.trigger_price or 0) - 100)  # the stop triggers and fills on Bluefin
    fake.refuse_streams = False
    wait_for(lambda: exchange.stream_connected, 15)
    wait_for(lambda: [o for o in orders(db, "stop_loss") if o.status == "FILLED"], 15)
    with db.session() as session:
        position = session.get(PositionRow, "BTC-PERP")
    assert position is not None and position.quantity == 0
    assert fake.account(exchange.client.address)["positions"].get("BTC-PERP", {}).get("size", 0) == 0


def test_a_stop_is_not_cancelled_before_its_replacement_works(
    fake: FakeBluefinPro, engine: Engine, db: Database
) -> None:
    engine.prepare()
    add_buy(db, "renew", fake.price("BTC-PERP"))
    engine.process_pending_signals()
    (old,) = [o for o in orders(db, "stop_loss") if o.status == "OPEN"]
    with db.session() as session:  # the stop is a few hours from its signed expiry: it must be replaced
        session.get(OrderRow, old.id).expires_at = datetime.now(UTC) + timedelta(hours=3)  # type: ignore[union-attr]
    engine.executor._touched("BTC-PERP")
    fake.misbehave("429", "/api/v1/trade/orders", times=1, retry_after_s=0.2)  # the replacement is refused
    engine.manager.protect("BTC-PERP", engine.views["BTC-PERP"])
    by_id = {o.client_id: o for o in orders(db, "stop_loss")}
    assert by_id[old.client_id].status == "OPEN"  # kept: its replacement did not go out
    assert [o.status for o in by_id.values() if o.client_id != old.client_id] == ["REJECTED"]
    time.sleep(0.3)
    engine.executor._touched("BTC-PERP")
    engine.manager.protect("BTC-PERP", engine.views["BTC-PERP"])
    stops = orders(db, "stop_loss")
    assert {o.client_id: o.status for o in stops}[old.client_id] == "CANCELED"  # replaced, then cancelled
    assert [o.status for o in stops if o.status == "OPEN"] == ["OPEN"]
    assert len([o for o in fake.orders.values() if o["status"] == "STANDBY"]) == 1


def test_a_position_bluefin_changed_on_its_own_blocks_entries_until_it_agrees_again(
    fake: FakeBluefinPro, engine: Engine, db: Database
) -> None:
    from shared.db import PositionRow

    engine.prepare()
    add_buy(db, "drift", fake.price("BTC-PERP"))
    engine.process_pending_signals()
    engine.fold_exchange_changes()
    assert engine.check_positions() == {}  # ours and Bluefin's agree
    with db.session() as session:  # as if Bluefin had deleveraged part of it on its own
        row = session.get(PositionRow, "BTC-PERP")
        assert row is not None
        held, row.quantity = row.quantity, row.quantity + 0.005
    assert (
        "BTC-PERP" in engine.check_positions() and "BTC-PERP" not in engine.external
    )  # once: maybe in flight
    engine.check_positions()
    assert engine.external["BTC-PERP"].startswith("position: ours")  # twice in a row: EXTERNAL
    assert engine._blocked("BTC-PERP", None).startswith("BTC-PERP has EXTERNAL activity")
    with db.session() as session:
        session.get(PositionRow, "BTC-PERP").quantity = held  # type: ignore[union-attr]
    assert engine.check_positions() == {} and "BTC-PERP" not in engine.external  # released

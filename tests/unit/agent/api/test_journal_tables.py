"""Orders, decisions, fills, funding and positions a page at a time, filtered, with their totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from agent.engine.engine import Engine
from shared.db import Database, FundingRow
from tests.unit.agent.api.test_app import AUTH, add_signal
from tests.unit.agent.api.test_tables import trade_twice


def page(client: FlaskClient, path: str) -> dict[str, object]:
    answer = client.get(path, headers=AUTH)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert isinstance(body, dict)
    return body


def test_orders_by_page_side_and_state(client: FlaskClient) -> None:
    trade_twice(client)
    every = client.get("/api/orders", headers=AUTH).get_json()["orders"]
    first = page(client, "/api/tables/orders?per_page=2")
    assert first["total"] == len(every) and first["pages"] == -(-len(every) // 2)
    assert [o["client_id"] for o in first["rows"]] == [o["client_id"] for o in every[:2]]  # type: ignore[attr-defined]
    sells = page(client, "/api/tables/orders?side=SELL&symbol=BTCUSDT.P&per_page=100")
    assert sells["total"] == sum(o["side"] == "SELL" for o in every)
    assert {o["side"] for o in sells["rows"]} == {"SELL"}  # type: ignore[attr-defined]
    filled = page(client, "/api/tables/orders?state=FILLED&per_page=100")
    assert filled["total"] == sum(o["status"] == "FILLED" for o in every) >= 4
    working = page(client, "/api/tables/orders?state=working")
    assert working["total"] == 0  # both positions closed: their stops and targets were cancelled
    finished = page(client, "/api/tables/orders?state=finished")
    assert finished["total"] == len(every)


def test_decisions_by_verdict_and_action(client: FlaskClient) -> None:
    trade_twice(client)
    engine: Engine = client.application.extensions["engine"]
    engine.process_pending_signals()  # the waiting buy: approved, a third position
    add_signal(client, "again")  # a buy while long: vetoed (already positioned)
    engine.process_pending_signals()
    every = page(client, "/api/tables/decisions?per_page=100")
    assert every["total"] == 6
    approved = page(client, "/api/tables/decisions?verdict=approved&per_page=100")
    vetoed = page(client, "/api/tables/decisions?verdict=vetoed")
    assert (
        approved["total"] + vetoed["total"] + page(client, "/api/tables/decisions?verdict=hold")["total"] == 6
    )  # type: ignore[operator]
    assert vetoed["total"] == 1 and not vetoed["rows"][0]["risk_approved"]  # type: ignore[index]
    assert all(d["risk_approved"] for d in approved["rows"])  # type: ignore[attr-defined]
    longs = page(client, "/api/tables/decisions?action=open_long&per_page=100")
    assert {d["action"] for d in longs["rows"]} == {"open_long"} and longs["total"] == 4  # type: ignore[attr-defined]


def test_fills_and_positions_filtered(client: FlaskClient) -> None:
    trade_twice(client)
    fills = client.get("/api/fills", headers=AUTH).get_json()["fills"]
    buys = page(client, "/api/tables/fills?side=BUY&per_page=1")
    assert buys["total"] == sum(f["side"] == "BUY" for f in fills) == 2 and buys["pages"] == 2
    assert page(client, "/api/tables/positions")["total"] == 0
    add_signal(client, "long-again")
    client.application.extensions["engine"].process_pending_signals()
    (held,) = page(client, "/api/tables/positions?side=long")["rows"]  # type: ignore[misc]
    assert held["symbol"] == "BTC-PERP" and held["quantity"] > 0 and held["mark_price"] > 0
    assert page(client, "/api/tables/positions?side=short")["total"] == 0


def test_funding_page_and_its_sum(client: FlaskClient) -> None:
    db: Database = client.application.extensions["db"]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with db.session() as session:
        for n, amount in enumerate((-1.25, 0.5, -0.25)):
            session.add(FundingRow(key=f"BTC-PERP:{n}", symbol="BTC-PERP", amount=amount, rate=0.0001,
                                   side="LONG", time=at + timedelta(hours=n)))  # fmt: skip
    body = page(client, "/api/tables/funding?per_page=2")
    assert [p["amount"] for p in body["rows"]] == [-0.25, 0.5] and body["total"] == 3  # type: ignore[attr-defined]
    assert body["amount"] == -1.0
    assert page(client, "/api/tables/funding?symbol=ETH-PERP")["total"] == 0


def test_bad_filters_name_the_field_and_the_rule(client: FlaskClient) -> None:
    orders = client.get("/api/tables/orders?state=sleeping&side=up", headers=AUTH)
    assert orders.status_code == 400 and [d["field"] for d in orders.get_json()["details"]] == [
        "side",
        "state",
    ]
    decisions = client.get("/api/tables/decisions?verdict=maybe", headers=AUTH).get_json()
    assert decisions["details"] == [{"field": "verdict", "message": "must be one of approved, vetoed, hold"}]
    positions = client.get("/api/tables/positions?side=BUY&per_page=0", headers=AUTH).get_json()
    assert [d["field"] for d in positions["details"]] == ["per_page", "side"]
    assert client.get("/api/tables/fills").status_code == 401

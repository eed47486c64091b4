"""The dashboard's tables a page at a time: trades and signals, filtered, with their totals."""

from __future__ import annotations

from flask.testing import FlaskClient

from agent.engine.engine import Engine
from tests.unit.agent.api.test_app import AUTH, add_signal


def trade_twice(client: FlaskClient) -> None:
    engine: Engine = client.application.extensions["engine"]
    for n in range(2):
        add_signal(client, f"open-{n}")
        engine.process_pending_signals()
        add_signal(client, f"close-{n}", "close")
        engine.process_pending_signals()
    add_signal(client, "waiting")  # no decision yet: pending


def test_trades_page_by_page_and_by_side(client: FlaskClient) -> None:
    trade_twice(client)
    newest = client.get("/api/trades", headers=AUTH).get_json()["trades"]
    first = client.get("/api/tables/trades?per_page=1", headers=AUTH).get_json()
    second = client.get("/api/tables/trades?per_page=1&page=2", headers=AUTH).get_json()
    assert (first["total"], first["pages"], first["page"], first["per_page"]) == (2, 2, 1, 1)
    assert [first["rows"][0]["id"], second["rows"][0]["id"]] == [t["id"] for t in newest]
    assert client.get("/api/tables/trades?side=SELL", headers=AUTH).get_json()["total"] == 0
    longs = client.get("/api/tables/trades?side=BUY&symbol=BTCUSDT.P", headers=AUTH).get_json()
    assert longs["total"] == 2 and {t["side"] for t in longs["rows"]} == {"BUY"}
    past = client.get("/api/tables/trades?page=9", headers=AUTH).get_json()
    assert past["rows"] == [] and past["total"] == 2


def test_signals_filtered_by_action_and_outcome(client: FlaskClient) -> None:
    trade_twice(client)
    every = client.get("/api/tables/signals", headers=AUTH).get_json()
    assert every["total"] == 5 and every["pages"] == 1
    pending = client.get("/api/tables/signals?outcome=pending", headers=AUTH).get_json()
    assert [s["status"] for s in pending["rows"]] == ["pending"] and pending["total"] == 1
    traded = client.get("/api/tables/signals?outcome=traded&action=buy", headers=AUTH).get_json()
    assert traded["total"] == 2 and {(s["action"], s["status"]) for s in traded["rows"]} == {
        ("buy", "traded")
    }
    closes = client.get("/api/tables/signals?action=close", headers=AUTH).get_json()
    assert closes["total"] == 2 and {s["action"] for s in closes["rows"]} == {"close"}


def test_a_bad_page_query_names_the_field_and_the_rule(client: FlaskClient) -> None:
    answer = client.get("/api/tables/trades?page=0&per_page=500&side=LONG", headers=AUTH)
    assert answer.status_code == 400
    assert answer.get_json()["details"] == [
        {"field": "page", "message": "must be an integer from 1"},
        {"field": "per_page", "message": "must be an integer from 1 to 100"},
        {"field": "side", "message": "must be one of BUY, SELL"},
    ]
    signals = client.get("/api/tables/signals?outcome=maybe", headers=AUTH).get_json()
    assert signals["details"] == [{"field": "outcome", "message": "must be one of pending, traded, no_trade"}]
    assert client.get("/api/tables/signals").status_code == 401

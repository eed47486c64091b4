from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask_socketio import SocketIO

from dashboard.app import create_app
from shared.db import Database, OrderRow, SignalRow
from tests.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(make_settings: Any) -> Flask:
    return create_app(make_settings())


def socketio_of(app: Flask) -> SocketIO:
    return app.extensions["bluefinai.socketio"]  # type: ignore[no-any-return]


def test_socket_needs_the_token(app: Flask) -> None:
    sio = socketio_of(app)
    assert not sio.test_client(app).is_connected()
    assert not sio.test_client(app, auth={"token": "wrong-token-000000"}).is_connected()
    client = sio.test_client(app, auth={"token": TOKEN})
    assert client.is_connected()


def test_events_need_the_token_and_a_known_name(app: Flask) -> None:
    http = app.test_client()
    event = {"event": "order", "data": {"client_id": "x"}}
    assert http.post("/internal/events", json=event).status_code == 401
    bad = http.post("/internal/events", json={"event": "nonsense", "data": {}}, headers=AUTH)
    assert bad.status_code == 400 and bad.get_json()["details"][0]["field"] == "event"


def test_posted_events_reach_connected_clients(app: Flask) -> None:
    client = socketio_of(app).test_client(app, auth={"token": TOKEN})
    client.get_received()  # the snapshot
    response = app.test_client().post(
        "/internal/events",
        json={"event": "market", "data": {"symbol": "BTC-PERP", "price": 42000.5}},
        headers=AUTH,
    )
    assert response.status_code == 200
    (received,) = client.get_received()
    assert received["name"] == "market" and received["args"][0] == {"symbol": "BTC-PERP", "price": 42000.5}


def test_a_batch_of_events_reaches_clients_in_order_or_is_refused_whole(app: Flask) -> None:
    client = socketio_of(app).test_client(app, auth={"token": TOKEN})
    client.get_received()  # the snapshot
    http = app.test_client()
    batch = [{"event": "order", "data": {"n": 1}}, {"event": "trade", "data": {"n": 2}}]
    bad = http.post(
        "/internal/events", json={"events": [*batch, {"event": "nope", "data": {}}]}, headers=AUTH
    )
    assert bad.status_code == 400 and bad.get_json()["details"][0]["field"] == "events[2].event"
    assert client.get_received() == []
    not_object = http.post("/internal/events", json={"events": [{"event": "order", "data": 3}]}, headers=AUTH)
    assert not_object.get_json()["details"][0]["field"] == "events[0].data"
    assert http.post("/internal/events", json={"events": []}, headers=AUTH).status_code == 400
    response = http.post("/internal/events", json={"events": batch}, headers=AUTH)
    assert response.status_code == 200 and response.get_json()["events"] == 2
    assert [(m["name"], m["args"][0]["n"]) for m in client.get_received()] == [("order", 1), ("trade", 2)]


def test_a_new_client_gets_a_snapshot_from_the_database(app: Flask) -> None:
    db: Database = app.extensions["db"]
    with db.session() as session:
        signal = SignalRow(idempotency_key="k", source="tradingview", symbol="BTC-PERP", action="buy", raw={})
        session.add(signal)
        session.flush()
        session.add(
            OrderRow(client_id="bfa-1", signal_id=signal.id, symbol="BTC-PERP", side="BUY", order_type="MARKET",
                     quantity=0.01, status="FILLED", price=40000.0)
        )  # fmt: skip
    client = socketio_of(app).test_client(app, auth={"token": TOKEN})
    snapshots = [m["args"][0] for m in client.get_received() if m["name"] == "snapshot"]
    assert snapshots[0]["orders"][0]["client_id"] == "bfa-1"
    assert snapshots[0]["signals"][0]["status"] == "pending"


def test_page_and_health(app: Flask) -> None:
    http = app.test_client()
    page = http.get("/").get_data(as_text=True)
    assert 'id="price-BTC-PERP"' in page and "socket.io.min.js" in page
    assert http.get("/health").get_json() == {"status": "ok", "service": "websocket"}


def test_the_backtests_view_and_the_report_assets_it_loads(app: Flask) -> None:
    from agent.backtest.report_page import CSS, RENDER_JS

    http = app.test_client()
    page = http.get("/").get_data(as_text=True)
    assert 'data-testid="backtests"' in page and "backtests.js" in page
    script = http.get("/static/backtest/report.js")
    assert script.status_code == 200 and script.mimetype == "application/javascript"
    assert script.get_data(as_text=True) == RENDER_JS  # the script report.html inlines, the same file
    style = http.get("/static/backtest/report.css")
    assert style.mimetype == "text/css" and style.get_data(as_text=True) == CSS
    for name in ("report.py", "..%2Freport.py", "figures.py", "__init__.py"):
        assert http.get(f"/static/backtest/{name}").status_code == 404

"""The websocket service passes the agent's ``liquidation_alert`` events on to the dashboard's clients."""

from __future__ import annotations

from typing import Any

from agent.engine.liquidation_alert import LiquidationAlert
from dashboard.app import create_app
from tests.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_liquidation_alert_reaches_connected_clients(make_settings: Any) -> None:
    app = create_app(make_settings())
    client = app.extensions["bluefinai.socketio"].test_client(app, auth={"token": TOKEN})
    client.get_received()  # the snapshot
    alert = LiquidationAlert("BTC-PERP", 0.1, 31_400.0, 30_000.0, 500.0, 2.8, 3.0, True).as_dict()
    response = app.test_client().post(
        "/internal/events", json={"event": "liquidation_alert", "data": alert}, headers=AUTH
    )
    assert response.status_code == 200
    (received,) = client.get_received()
    assert received["name"] == "liquidation_alert" and received["args"][0] == alert

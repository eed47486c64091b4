"""GET /api/decisions/<id>: the decision with its signal and alert, orders, fills and realised outcome."""

from __future__ import annotations

from flask.testing import FlaskClient

from agent.engine.engine import Engine
from shared.db import Database, SignalRow
from tests.unit.agent.api.test_app import AUTH


def test_a_decisions_story_from_alert_to_realised_outcome(client: FlaskClient) -> None:
    engine: Engine = client.application.extensions["engine"]
    db: Database = client.application.extensions["db"]
    engine.step_market()
    with db.session() as session:
        row = SignalRow(
            idempotency_key="story", source="tradingview", symbol="BTC-PERP", action="buy",
            raw={"action": "buy", "passphrase": "hunter2-secret", "note": "kept"},
        )  # fmt: skip
        session.add(row)
        session.flush()
        signal_id = row.id
    engine.process_pending_signals()
    decision_id = client.get("/api/decisions", headers=AUTH).get_json()["decisions"][0]["id"]
    story = client.get(f"/api/decisions/{decision_id}", headers=AUTH).get_json()
    assert story["signal"]["id"] == signal_id and story["alert"] == {"action": "buy", "note": "kept"}
    assert "hunter2" not in str(story)
    roles = [o["role"] for o in story["orders"]]
    assert roles[0] == "entry" and "stop_loss" in roles
    assert story["fills"] and story["fills"][0]["client_id"] == story["orders"][0]["client_id"]
    assert story["outcome"]["trades"] == 0 and story["outcome"]["realised_pnl"] is None
    assert story["outcome"]["fees"] == sum(f["fee"] for f in story["fills"]) > 0
    assert story["decision"]["risk"]["binding"] in story["decision"]["risk"]["sizes"]
    assert story["prompts"] == [] and story["ai_calls"] == []

    assert client.post("/api/positions/BTC-PERP/close", json={}, headers=AUTH).status_code == 200
    story = client.get(f"/api/decisions/{decision_id}", headers=AUTH).get_json()
    (trade,) = story["trades"]
    assert story["outcome"]["trades"] == 1 and story["outcome"]["realised_pnl"] == trade["pnl"]
    assert trade["exit_reason"] == "manual"
    assert client.get("/api/decisions/999999", headers=AUTH).status_code == 404

"""GET /api/algos: the latest algos, newest first, with their progress; filtered by status."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.unit.agent.api.test_app import AUTH


def start(client: FlaskClient, **body: object) -> dict[str, object]:
    answer = client.post("/api/algos", json={"symbol": "BTC-PERP", "side": "buy", **body}, headers=AUTH)
    assert answer.status_code == 201, answer.get_json()
    view = answer.get_json()
    assert isinstance(view, dict)
    return view


def test_algos_are_listed_newest_first_with_their_progress(client: FlaskClient) -> None:
    assert client.get("/api/algos", headers=AUTH).get_json() == {"algos": [], "running": 0}
    twap = start(client, kind="twap", quantity=0.02, slices=4, duration_s=600)
    iceberg = start(client, kind="iceberg", quantity=0.004, visible_quantity=0.002, limit_price=30000.0)
    client.post(f"/api/algos/{twap['id']}/cancel", headers=AUTH)
    body = client.get("/api/algos", headers=AUTH).get_json()
    assert [a["id"] for a in body["algos"]] == [iceberg["id"], twap["id"]] and body["running"] == 1
    shown_iceberg, shown_twap = body["algos"]
    assert shown_twap["status"] == "CANCELED" and shown_twap["slices"] == 4 and shown_twap["slices_sent"] == 1
    assert shown_twap["interval_s"] == 150.0 and shown_twap["created_at"]
    assert shown_iceberg["visible_quantity"] == 0.002 and shown_iceberg["limit_price"] == 30000.0
    assert shown_iceberg["filled"] == 0 and shown_iceberg["progress"] == 0
    running = client.get("/api/algos?status=RUNNING", headers=AUTH).get_json()["algos"]
    assert [a["id"] for a in running] == [iceberg["id"]]
    assert len(client.get("/api/algos?limit=1", headers=AUTH).get_json()["algos"]) == 1


def test_a_bad_list_query_names_the_field(client: FlaskClient) -> None:
    answer = client.get("/api/algos?limit=0&status=LOST", headers=AUTH)
    assert answer.status_code == 400
    assert [d["field"] for d in answer.get_json()["details"]] == ["limit", "status"]
    assert client.get("/api/algos").status_code == 401

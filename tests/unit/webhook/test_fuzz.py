"""Any body gets a 4xx or a 2xx from /webhook, never a 5xx, on SQLite and on PostgreSQL; what a stranger
sends costs one parse and a bounded log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.conftest import PASSPHRASE, free_port
from tests.unit.webhook.client import client_db, webhook_client

FIELDS = ("symbol", "action", "price", "stop_loss", "take_profit", "confidence", "timeframe", "strategy",
          "time", "id", "extra")  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["BTCUSDT.P", "ETH-PERP", "DOGEUSDT", "buy", "sell", "close", "1e400", "-1e400", "15",
                       "9" * 400, "2026-12-01T00:00:00Z", "\x00", "\ud800", "NaN", "Infinity", "x" * 200])
)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8), inner, max_size=3), max_leaves=12)  # fmt: skip
alerts = st.fixed_dictionaries(
    {"passphrase": st.sampled_from([PASSPHRASE, PASSPHRASE + "x", None])},
    optional={name: values for name in FIELDS},
)
# hand-made pieces of JSON text that json.dumps cannot produce: 1e400, NaN, deep nesting, huge numbers
raw_pieces = st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "1" * 320, "1" * 5000, '"\\u0000"',
                              '"\\ud800"', "[" * 400 + "]" * 400, '{"a":' * 300 + "1" + "}" * 300,
                              "[" * 60_000, "0.0000001e-400", '"' + "é" * 100 + '"'])  # fmt: skip


def body_with_raw(field: str, piece: str, passphrase: str | None) -> bytes:
    head = {"passphrase": passphrase, "symbol": "BTC-PERP", "action": "buy", "id": "fuzz"}
    return (json.dumps(head)[:-1] + f', "{field}": {piece}}}').encode()


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, make_settings: Any) -> Iterator[TestClient]:
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    overrides: dict[str, Any] = {"agent_url": f"http://127.0.0.1:{free_port()}", "webhook_max_age_s": 10**9}
    if url:
        overrides["database_url"] = url
    client = webhook_client(make_settings(**overrides))
    yield client
    client_db(client).dispose()


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(alert=alerts)
def test_no_alert_body_gets_a_5xx(client: TestClient, alert: dict[str, Any]) -> None:
    response = client.post("/webhook", content=json.dumps(alert), headers={"Content-Type": "text/plain"})
    assert response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json"
    if alert["passphrase"] != PASSPHRASE:
        assert response.status_code == 401


@FUZZ
@given(field=st.sampled_from(FIELDS), piece=raw_pieces, passphrase=st.sampled_from([PASSPHRASE, "wrong"]))
def test_no_hand_made_json_gets_a_5xx(client: TestClient, field: str, piece: str, passphrase: str) -> None:
    response = client.post("/webhook", content=body_with_raw(field, piece, passphrase))
    assert response.status_code in (200, 202, 400, 401), response.text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=600))
def test_no_bytes_get_a_5xx(client: TestClient, body: bytes) -> None:
    assert client.post("/webhook", content=body).status_code in (400, 401)


def test_what_once_broke_is_refused_with_the_field_named(client: TestClient) -> None:
    def problems(field: str, piece: str) -> list[dict[str, str]]:
        response = client.post("/webhook", content=body_with_raw(field, piece, PASSPHRASE))
        assert response.status_code == 400, response.text
        return list(response.json()["details"])

    assert problems("price", "1" * 320) == [
        {"field": "price", "message": "must be a finite number greater than 0"}
    ]
    assert problems("extra", "1e400") == [{"field": "extra", "message": "must not contain NaN or Infinity"}]
    assert problems("timeframe", '"123456789012"')[0]["field"] == "timeframe"  # VARCHAR(10) on PostgreSQL
    assert problems("extra", '{"a":' * 300 + "1" + "}" * 300) == [
        {"field": "body", "message": "must not nest deeper than 16 levels"}
    ]


def test_a_stranger_is_refused_before_any_walk_over_the_body(client: TestClient) -> None:
    deep = body_with_raw("extra", '{"a":' * 300 + '"\\u0000"' + "}" * 300, "wrong")
    assert client.post("/webhook", content=deep).status_code == 401


def test_a_market_not_traded_here_is_refused_naming_it(client: TestClient) -> None:
    alert = {"passphrase": PASSPHRASE, "symbol": "ETHUSDT.P", "action": "buy", "id": "eth"}
    response = client.post("/webhook", content=json.dumps(alert))
    assert response.status_code == 400
    assert response.json()["details"] == [
        {"field": "symbol", "message": "ETH-PERP is not traded here (SYMBOLS: BTC-PERP)"}
    ]


def test_log_lines_stay_small_whatever_a_stranger_sends(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.logs import JsonFormatter

    formatter = JsonFormatter("webhook", 8192)
    bodies = [b"x" * 60_000, json.dumps({"passphrase": "w", "symbol": "A" * 60_000}).encode(),
              json.dumps({"passphrase": PASSPHRASE, "symbol": "B" * 60_000, "action": "buy"}).encode(),
              b"[" * 60_000]  # fmt: skip
    with caplog.at_level(logging.INFO):
        for body in bodies:
            assert client.post("/webhook", content=body).status_code in (400, 401)
    lines = [formatter.format(record) for record in caplog.records]
    assert lines and max(len(line) for line in lines) <= 8192
    assert all(json.loads(line)["event"] for line in lines)


def test_an_alert_with_all_fields_is_still_accepted(client: TestClient) -> None:
    alert = {"passphrase": PASSPHRASE, "symbol": "BINANCE:BTCUSDT.P", "action": "buy", "price": "42000.5",
             "stop_loss": 41000, "take_profit": 45000, "confidence": 0.7, "timeframe": "15",
             "strategy": "ema cross", "time": datetime.now(UTC).isoformat(), "id": "full-1",
             "extra": {"nested": [1, 2, {"deeper": "ok"}]}}  # fmt: skip
    response = client.post("/webhook", content=json.dumps(alert))
    assert response.status_code == 202, response.text

"""Who may post an alert: WEBHOOK_ALLOWED_IPS and TradingView's client certificate as nginx reports it."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from tests.conftest import PASSPHRASE, free_port
from tests.unit.webhook.client import client_db, webhook_client
from webhook.gate import is_tradingview_subject, parse_dn

TV_DN = r"emailAddress=webhook-server@tradingview.com,CN=TradingView Webhooks,O=TradingView\, Inc.,C=US"
ALERT = json.dumps({"passphrase": PASSPHRASE, "symbol": "BTC-PERP", "action": "buy", "id": "g1"})


def client(make_settings: Any, remote: str = "127.0.0.1", **overrides: Any) -> TestClient:
    settings = make_settings(agent_url=f"http://127.0.0.1:{free_port()}", **overrides)
    return webhook_client(settings, remote)


def test_distinguished_names_keep_escaped_commas_and_refuse_repeated_attributes() -> None:
    assert parse_dn(TV_DN)["O"] == "TradingView, Inc."
    assert is_tradingview_subject(TV_DN)
    assert is_tradingview_subject("CN=TradingView Webhooks,O=TradingView\\, Inc.")
    assert not is_tradingview_subject("CN=TradingView Webhooks,O=Evil")
    assert not is_tradingview_subject("CN=TradingView Webhooks,O=TradingView\\, Inc.,CN=other")
    assert not is_tradingview_subject("OU=CN=TradingView Webhooks\\,O=TradingView\\, Inc.")
    assert not is_tradingview_subject("")


def test_allowed_ips_judge_the_real_sender_behind_our_proxy(make_settings: Any) -> None:
    app = client(make_settings, webhook_allowed_ips="52.89.214.238")
    # through nginx on this machine: X-Real-IP is the sender
    assert app.post("/webhook", content=ALERT, headers={"X-Real-IP": "52.89.214.238"}).status_code == 202
    refused = app.post("/webhook", content=ALERT, headers={"X-Real-IP": "203.0.113.9"})
    assert refused.status_code == 403 and "WEBHOOK_ALLOWED_IPS" in refused.json()["reason"]
    # a sender from outside cannot claim an allowed address in the header
    outside = client(make_settings, "8.8.8.8", webhook_allowed_ips="52.89.214.238")
    assert outside.post("/webhook", content=ALERT, headers={"X-Real-IP": "52.89.214.238"}).status_code == 403


def test_with_the_tv_certificate_required_only_nginx_verified_tradingview_may_post(
    make_settings: Any,
) -> None:
    app = client(make_settings, webhook_require_tv_cert=True)
    ok = {"X-Client-Verify": "SUCCESS", "X-Client-Subject": TV_DN}
    assert app.post("/webhook", content=ALERT, headers=ok).status_code == 202
    for headers in ({}, {**ok, "X-Client-Verify": "FAILED:self signed certificate"},
                    {**ok, "X-Client-Subject": "CN=TradingView Webhooks,O=Someone Else"}):  # fmt: skip
        assert app.post("/webhook", content=ALERT, headers=headers).status_code == 403
    # straight to the service port from elsewhere: the headers are not believed
    direct = client(make_settings, "8.8.4.4", webhook_require_tv_cert=True)
    assert direct.post("/webhook", content=ALERT, headers=ok).status_code == 403


def test_a_database_that_cannot_take_the_alert_is_a_503_asking_to_send_again(make_settings: Any) -> None:
    from sqlalchemy import text

    app = client(make_settings)
    with client_db(app).engine.begin() as connection:
        connection.execute(text("DROP TABLE signals"))
    response = app.post("/webhook", content=ALERT)
    assert response.status_code == 503
    assert response.json() == {"error": "database unavailable, send again"}

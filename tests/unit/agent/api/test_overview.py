"""GET /api/ai/spend and /api/settings/effective."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from shared.db import AiCallRow, Database
from tests.unit.agent.api.test_app import AUTH


def test_ai_spend_today_against_the_budget(client: FlaskClient) -> None:
    assert client.get("/api/ai/spend").status_code == 401
    body = client.get("/api/ai/spend", headers=AUTH).get_json()
    assert body["spent_today_usd"] == 0 and body["remaining_usd"] == body["budget_usd"] > 0
    assert body["over_budget"] is False
    db: Database = client.application.extensions["db"]
    with db.session() as session:
        session.add(
            AiCallRow(
                provider="claude", model="m", prompt_version="v1", prompt_hash="h", signal_key="k", prompt="p",
                raw_output="{}", parsed={}, validation_errors="[]", error="", latency_ms=1, input_tokens=1,
                output_tokens=1, cost_usd=body["budget_usd"] + 0.5, created_at=datetime.now(UTC),
            )
        )  # fmt: skip
    after = client.get("/api/ai/spend", headers=AUTH).get_json()
    assert after["spent_today_usd"] == pytest.approx(body["budget_usd"] + 0.5)
    assert after["over_budget"] is True and after["remaining_usd"] == 0


def test_effective_settings_redact_secrets_and_resolve_the_preset(client: FlaskClient) -> None:
    body = client.get("/api/settings/effective", headers=AUTH).get_json()
    assert body["settings"]["API_TOKEN"] == "***"
    assert body["settings"]["RISK_TOLERANCE"] == "moderate"
    assert body["risk_policy"]["max_position_size"] == 0.1 and "risk_per_trade" in body["risk_policy"]

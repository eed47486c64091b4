"""The dashboard's AI spend and effective settings panels.

- ``GET /api/ai/spend``: what the AI analysts cost since 00:00 UTC against ``AI_DAILY_BUDGET_USD`` (over it,
  the analyst falls back to the rules);
- ``GET /api/settings/effective``: every setting as loaded (secrets redacted) and the risk policy the
  engine runs with (the preset resolved with its overrides).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Flask, jsonify

from agent.analysis.audit import AuditLog
from agent.engine.engine import Engine
from shared.config import Settings
from shared.db import Database


def register_overview_routes(app: Flask, db: Database, engine: Engine, settings: Settings) -> None:
    audit = AuditLog(db)

    @app.get("/api/ai/spend")
    def ai_spend() -> Any:
        spent = audit.spent_today()
        budget = settings.ai_daily_budget_usd
        return jsonify(
            spent_today_usd=spent, budget_usd=budget, remaining_usd=max(budget - spent, 0.0),
            over_budget=spent >= budget, analyst=settings.ai_model_provider,
        )  # fmt: skip

    @app.get("/api/settings/effective")
    def effective_settings() -> Any:
        return jsonify(settings=settings.public_view(), risk_policy=asdict(engine.policy))

"""The analyst for AI_MODEL_PROVIDER, wrapped in the breaker, budget and fallback."""

from __future__ import annotations

from agent.analysis.audit import AuditLog
from agent.analysis.base import Analyst
from agent.analysis.claude import ClaudeAnalyst
from agent.analysis.resilient import HoldAnalyst, ResilientAnalyst
from agent.analysis.rules import RulesAnalyst
from shared.config import Settings
from shared.db import Database
from shared.errors import ConfigError


def build_analyst(settings: Settings, db: Database) -> Analyst:
    provider = settings.ai_model_provider
    if provider == "rules":
        return RulesAnalyst()
    audit = AuditLog(db)
    if provider == "claude":
        primary: Analyst = ClaudeAnalyst(
            settings.secret("anthropic_api_key"), audit, model=settings.ai_model,
            base_url=settings.anthropic_base_url, timeout_s=settings.ai_timeout_s,
            max_retries=settings.ai_max_retries, max_leverage=20.0,
        )  # fmt: skip
    else:
        raise ConfigError(
            [f"AI_MODEL_PROVIDER: {provider!r} is not available in this build; use rules or claude"]
        )
    fallback: Analyst = RulesAnalyst() if settings.ai_fallback == "rules" else HoldAnalyst()
    return ResilientAnalyst(
        primary, fallback, audit.spent_today, settings.ai_daily_budget_usd,
        settings.ai_breaker_failures, settings.ai_breaker_cooldown_s,
    )  # fmt: skip

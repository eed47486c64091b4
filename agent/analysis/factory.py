"""The analyst for AI_MODEL_PROVIDER, wrapped in the breaker, budget and fallback."""

from __future__ import annotations

from agent.analysis.audit import AuditLog, ResponseCache
from agent.analysis.base import Analyst
from agent.analysis.chat import ChatCompletionsAnalyst
from agent.analysis.claude import DEFAULT_MODEL, ClaudeAnalyst
from agent.analysis.follow import FollowAnalyst
from agent.analysis.research import Researcher
from agent.analysis.resilient import HoldAnalyst, ResilientAnalyst
from agent.analysis.rules import RulesAnalyst
from shared.config import Settings
from shared.db import Database
from shared.errors import ConfigError


def _researcher(settings: Settings, audit: AuditLog, cache: ResponseCache) -> Researcher | None:
    if settings.ai_research_provider != "perplexity":
        return None
    return Researcher(
        settings.perplexity_base_url,
        "sonar",
        settings.secret("perplexity_api_key"),
        audit,
        timeout_s=settings.ai_timeout_s,
        cache=cache,
    )


def cache_database(settings: Settings, db: Database) -> Database:
    """Where AI_CACHE keeps its answers: AI_CACHE_DATABASE_URL (brought to the schema's head), else the
    journal's database."""
    url = settings.ai_cache_database_url
    if not url or settings.ai_cache == "off":
        return db
    cache = Database(url)
    cache.migrate()
    return cache


def build_analyst(settings: Settings, db: Database, provider: str | None = None) -> Analyst:
    """The analyst of AI_MODEL_PROVIDER (or of ``provider``: a shadow analyst of the arena)."""
    provider = provider or settings.ai_model_provider
    if provider == "rules":
        return RulesAnalyst()
    if provider == "follow":
        return FollowAnalyst()
    audit = AuditLog(db, settings.secret_values())
    cache = ResponseCache(cache_database(settings, db), settings.ai_cache)
    researcher = _researcher(settings, audit, cache)
    if provider == "claude":
        primary: Analyst = ClaudeAnalyst(
            settings.secret("anthropic_api_key"), audit, model=settings.ai_model or DEFAULT_MODEL,
            base_url=settings.anthropic_base_url, timeout_s=settings.ai_timeout_s,
            max_retries=settings.ai_max_retries, max_leverage=20.0,
            cache=cache, researcher=researcher,
        )  # fmt: skip
    elif provider == "perplexity":
        primary = ChatCompletionsAnalyst(
            "perplexity", settings.perplexity_base_url, settings.ai_model or "sonar-pro", audit,
            api_key=settings.secret("perplexity_api_key"), timeout_s=settings.ai_timeout_s,
            max_retries=settings.ai_max_retries, cache=cache, researcher=researcher,
        )  # fmt: skip
    elif provider == "openai-compatible":
        primary = ChatCompletionsAnalyst(
            "openai-compatible", settings.ai_base_url, settings.ai_model or "llama3.1", audit,
            api_key=settings.secret("ai_api_key"), timeout_s=settings.ai_timeout_s,
            max_retries=settings.ai_max_retries, cache=cache, researcher=researcher,
        )  # fmt: skip
    else:
        raise ConfigError([f"AI_MODEL_PROVIDER: {provider!r} is not known"])
    fallback: Analyst = RulesAnalyst() if settings.ai_fallback == "rules" else HoldAnalyst()
    return ResilientAnalyst(
        primary, fallback, audit.spent_today, settings.ai_daily_budget_usd,
        settings.ai_breaker_failures, settings.ai_breaker_cooldown_s,
    )  # fmt: skip

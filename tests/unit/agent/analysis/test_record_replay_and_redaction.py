"""AI_CACHE for every provider and for research (replay: no HTTP call at all), research audited and costed
inside the budget, and provider error texts stored and shown without the key. Real HTTP to local fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from agent.analysis.audit import AuditLog
from agent.analysis.base import MarketContext
from agent.analysis.claude import ClaudeAnalyst
from agent.analysis.factory import build_analyst
from agent.analysis.resilient import ResilientAnalyst
from agent.analysis.rules import RulesAnalyst
from shared.db import AiCallRow, Database
from shared.errors import Temporary
from shared.models import Signal, SignalAction
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.chat_api import FakeChat, completion
from tests.unit.agent.analysis.conftest import PRICE

DEAD = "http://127.0.0.1:9"  # nothing listens there: any network use fails
RESEARCH = {"summary": "ETF inflows; funding elevated", "sentiment": 0.4, "regime": "bull", "risks": ["CPI"]}
KEYS = {
    "anthropic_api_key": "sk-ant-replay-key-000",
    "perplexity_api_key": "pplx-replay-key-0000",
    "ai_api_key": "local-model-key-0000",
}


@pytest.fixture(scope="module")
def chat() -> Iterator[FakeChat]:
    fake = FakeChat()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def claude() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    yield fake
    fake.stop()


def signal(key: str = "tv:replay") -> Signal:
    return Signal(key, "tradingview", "BTC-PERP", SignalAction.BUY, price=PRICE)


def urls(base: str, claude_base: str | None = None) -> dict[str, str]:
    return {"anthropic_base_url": claude_base or base, "perplexity_base_url": base, "ai_base_url": base}


def calls(database: Database) -> list[AiCallRow]:
    with database.session() as session:
        return list(session.scalars(select(AiCallRow).order_by(AiCallRow.id)))


@pytest.mark.parametrize("provider", ["claude", "perplexity", "openai-compatible"])
def test_record_then_replay_asks_no_provider_for_every_provider_and_for_research(
    provider: str,
    chat: FakeChat,
    claude: FakeAnthropic,
    make_settings: Any,
    database: Database,
    context: MarketContext,
) -> None:
    chat.queue.clear()
    claude.queue.clear()
    chat.queue.append(("json", 200, completion(json.dumps(RESEARCH))))  # the research call comes first
    before = len(chat.requests) + len(claude.requests)
    live = {**KEYS, "ai_model_provider": provider, "ai_research_provider": "perplexity"}
    recording = make_settings(**live, **urls(chat.url, claude.url), ai_cache="record")
    recorded = build_analyst(recording, database).decide(signal(), context)
    asked = len(chat.requests) + len(claude.requests)
    assert asked - before == 2  # research + decision

    replaying = make_settings(**live, **urls(DEAD), ai_cache="replay", ai_max_retries=0)
    replayed = build_analyst(replaying, database).decide(signal(), context)
    assert replayed == recorded and replayed.rationale == recorded.rationale
    assert len(chat.requests) + len(claude.requests) == asked  # zero HTTP calls under replay
    rows = calls(database)
    assert [r.provider for r in rows] == ["research", provider, "research", provider]
    assert all(r.error == "" for r in rows)
    assert "ETF inflows" in rows[3].prompt  # the replayed research reached the replayed prompt


def test_replay_without_a_recording_is_a_failure_not_a_call(
    chat: FakeChat, make_settings: Any, database: Database, context: MarketContext
) -> None:
    chat.queue.clear()
    before = len(chat.requests)
    settings = make_settings(**KEYS, ai_model_provider="perplexity", **urls(chat.url), ai_cache="replay")
    decision = build_analyst(settings, database).decide(signal("tv:unrecorded"), context)
    assert "no answer" in decision.rationale and decision.analyst == "rules"  # the fallback decided
    assert len(chat.requests) == before


def test_research_is_audited_costed_under_the_signal_and_inside_the_budget(
    chat: FakeChat, claude: FakeAnthropic, make_settings: Any, database: Database, context: MarketContext
) -> None:
    chat.queue.clear()
    chat.queue.append(("json", 200, completion(json.dumps(RESEARCH))))
    settings = make_settings(
        **KEYS, ai_model_provider="claude", ai_research_provider="perplexity", **urls(chat.url, claude.url),
        ai_daily_budget_usd=0.005,
    )  # fmt: skip
    analyst = build_analyst(settings, database)
    analyst.decide(signal("tv:costed"), context)
    research, decision = calls(database)
    assert (research.provider, research.signal_key) == ("research", "tv:costed")
    # sonar: 1 USD per million tokens each way; the fake answers 900 in, 120 out
    assert research.cost_usd == pytest.approx((900 + 120) / 1e6)
    assert json.loads(research.raw_output)["choices"][0]["message"]["content"] == json.dumps(RESEARCH)
    assert AuditLog(database).spent_today() == pytest.approx(research.cost_usd + decision.cost_usd)
    assert {c["provider"] for c in AuditLog(database).calls_for("tv:costed")} == {"research", "claude"}
    # the budget is spent (claude's call cost more than 0.005 USD): no research, no decision call
    asked = len(chat.requests) + len(claude.requests)
    later = analyst.decide(signal("tv:over-budget"), context)
    assert "budget" in later.rationale and len(chat.requests) + len(claude.requests) == asked


def test_a_key_echoed_in_a_401_is_never_stored_or_shown(
    chat: FakeChat, claude: FakeAnthropic, database: Database, context: MarketContext
) -> None:
    key = "pplx-echoed-secret-123456"
    chat.queue.clear()
    chat.queue.append(("json", 401, {"error": {"message": f"invalid api key {key}"}}))
    audit = AuditLog(database, [key])
    from agent.analysis.chat import ChatCompletionsAnalyst

    perplexity = ChatCompletionsAnalyst("perplexity", chat.url, "sonar-pro", audit, api_key=key)
    with pytest.raises(Temporary) as raised:
        perplexity.decide(signal("tv:401"), context)
    assert "HTTP 401" in str(raised.value) and key not in str(raised.value)

    chat.queue.append(("json", 401, {"error": {"message": f"invalid api key {key}"}}))
    resilient = ResilientAnalyst(perplexity, RulesAnalyst(), lambda: 0.0, 0.0)
    decision = resilient.decide(signal("tv:401b"), context)
    assert "HTTP 401" in decision.rationale and key not in decision.rationale
    assert key not in resilient.last_problem

    claude_key = "sk-ant-echoed-secret-9999"
    claude.queue.clear()
    claude.queue.append(("json", 401, {"type": "error", "error": {"type": "authentication_error",
                                                                  "message": f"bad key {claude_key}"}}))  # fmt: skip
    model = ClaudeAnalyst(claude_key, AuditLog(database, [claude_key]), base_url=claude.url, max_retries=0)
    with pytest.raises(Temporary):
        model.decide(signal("tv:401c"), context)
    stored = " ".join(f"{r.error} {r.raw_output}" for r in calls(database))
    assert "401" in stored and key not in stored and claude_key not in stored
    assert "***" in stored

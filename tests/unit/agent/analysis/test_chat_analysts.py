"""Perplexity and OpenAI-compatible analysts over httpx against a fake chat-completions API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from agent.analysis.audit import AuditLog
from agent.analysis.base import MarketContext
from agent.analysis.chat import ChatCompletionsAnalyst
from agent.analysis.factory import build_analyst
from agent.analysis.resilient import ResilientAnalyst
from shared.db import AiCallRow, Database
from shared.errors import InvalidInput, Temporary
from shared.models import DecisionAction, Signal, SignalAction
from tests.fakes.anthropic_api import GOOD
from tests.fakes.chat_api import FakeChat, completion
from tests.unit.agent.analysis.conftest import PRICE


@pytest.fixture(scope="module")
def api() -> Iterator[FakeChat]:
    fake = FakeChat()
    yield fake
    fake.stop()


def signal() -> Signal:
    return Signal("tv:chat", "tradingview", "BTC-PERP", SignalAction.BUY, price=PRICE)


@pytest.mark.parametrize("provider", ["perplexity", "openai-compatible"])
def test_each_provider_through_the_factory(
    provider: str, api: FakeChat, make_settings: Any, database: Database, context: MarketContext
) -> None:
    api.queue.clear()
    settings = make_settings(
        ai_model_provider=provider, perplexity_api_key="pplx-test-key-000000", perplexity_base_url=api.url,
        ai_base_url=api.url,
    )  # fmt: skip
    analyst = build_analyst(settings, database)
    assert isinstance(analyst, ResilientAnalyst)
    decision = analyst.decide(signal(), context)
    assert decision.action is DecisionAction.OPEN_LONG and decision.analyst == provider
    request = api.requests[-1]
    assert request["path"] == "/chat/completions"
    assert request["body"]["response_format"]["json_schema"]["name"] == "trade_decision"
    assert request["body"]["model"] == ("sonar-pro" if provider == "perplexity" else "llama3.1")
    if provider == "perplexity":
        assert request["api_key"] == "pplx-test-key-000000"
    with database.session() as session:
        (call,) = session.scalars(select(AiCallRow)).all()
    assert call.input_tokens == 900 and call.output_tokens == 120
    assert call.cost_usd == pytest.approx((900 * 3 + 120 * 15) / 1e6 if provider == "perplexity" else 0.0)


def analyst(api: FakeChat, database: Database, timeout_s: float = 5.0) -> ChatCompletionsAnalyst:
    api.queue.clear()
    return ChatCompletionsAnalyst(
        "perplexity", api.url, "sonar-pro", AuditLog(database), timeout_s=timeout_s, max_retries=1
    )


@pytest.mark.parametrize(
    ("behaviour", "field"),
    [
        (("json", 200, completion("I would buy here.")), "content"),
        (("json", 200, completion(json.dumps({**GOOD, "confidence": -0.2}))), "confidence"),
        (("json", 200, completion(json.dumps({**GOOD, "take_profits": [30_000.0]}))), "take_profits"),
        (("json", 200, completion(json.dumps(GOOD), "length")), "finish_reason"),
        (("json", 200, {"choices": []}), "choices"),
    ],
)
def test_invalid_answers(
    api: FakeChat, database: Database, context: MarketContext, behaviour: tuple[Any, ...], field: str
) -> None:
    chat = analyst(api, database)
    api.queue.append(behaviour)
    with pytest.raises(InvalidInput) as caught:
        chat.decide(signal(), context)
    assert any(p.field == field for p in caught.value.problems)


def test_429_then_success_malformed_body_and_5xx(
    api: FakeChat, database: Database, context: MarketContext
) -> None:
    chat = analyst(api, database)
    api.queue.append(("json", 429, {"error": "slow down"}))
    assert chat.decide(signal(), context).action is DecisionAction.OPEN_LONG
    api.queue.append(("raw", 200, "{broken"))
    with pytest.raises(Temporary, match="not JSON"):
        chat.decide(signal(), context)
    api.queue.extend([("json", 500, {"error": "x"}), ("json", 503, {"error": "y"})])
    with pytest.raises(Temporary, match="after 2 attempts"):
        chat.decide(signal(), context)


def test_a_hang_is_a_timeout(api: FakeChat, database: Database, context: MarketContext) -> None:
    chat = analyst(api, database, timeout_s=0.3)
    chat.max_retries = 0
    api.queue.append(("hang", 1.5))
    with pytest.raises(Temporary, match="Timeout"):
        chat.decide(signal(), context)


def test_research_feeds_the_deciding_analysts_prompt_and_its_failure_is_not_fatal(
    api: FakeChat, make_settings: Any, database: Database, context: MarketContext
) -> None:
    from tests.fakes.anthropic_api import FakeAnthropic

    claude_api = FakeAnthropic()
    try:
        research = {
            "summary": "ETF inflows; funding elevated",
            "sentiment": 0.4,
            "regime": "bull",
            "risks": ["CPI"],
        }
        api.queue.clear()
        before = len(api.requests)
        api.queue.append(("json", 200, completion(json.dumps(research))))
        settings = make_settings(
            ai_model_provider="claude", anthropic_api_key="sk-ant-research-0", anthropic_base_url=claude_api.url,
            ai_research_provider="perplexity", perplexity_api_key="pplx-research-000", perplexity_base_url=api.url,
        )  # fmt: skip
        analyst = build_analyst(settings, database)
        assert analyst.decide(signal(), context).action is DecisionAction.OPEN_LONG
        prompt = claude_api.requests[-1]["body"]["messages"][0]["content"]
        assert "ETF inflows; funding elevated" in prompt and "may be wrong" in prompt
        assert api.requests[-1]["body"]["response_format"]["json_schema"]["name"] == "research"
        analyst.decide(signal(), context)  # cached: no second research call
        asked = [
            r
            for r in api.requests[before:]
            if r["body"]["response_format"]["json_schema"]["name"] == "research"
        ]
        assert len(asked) == 1

        fresh = build_analyst(settings, database)  # a new researcher: no cache
        api.queue.extend([("json", 500, {"error": "down"})] * 3)
        assert fresh.decide(signal(), context).action is DecisionAction.OPEN_LONG
        assert "Research" not in claude_api.requests[-1]["body"]["messages"][0]["content"]
    finally:
        claude_api.stop()


def test_research_needs_its_key(make_settings: Any) -> None:
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match="AI_RESEARCH_PROVIDER"):
        make_settings(ai_research_provider="perplexity")

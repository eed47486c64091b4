"""The position review's answer schema, its prompt, and the reviewer over the real SDK / chat client against the
fake APIs: a valid answer, a malformed one (no action, recorded with its problems), a provider down."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from agent.analysis.audit import AuditLog
from agent.analysis.base import MarketContext
from agent.analysis.chat import ChatCompletionsAnalyst
from agent.analysis.claude import ClaudeAnalyst
from agent.analysis.follow import FollowAnalyst
from agent.analysis.resilient import HoldAnalyst, ResilientAnalyst
from agent.analysis.review import AIReviewer, ReviewContext, build_review_prompt, build_reviewer, parse_review
from agent.analysis.rules import RulesAnalyst
from shared.db import AiCallRow, Database
from shared.errors import InvalidInput
from tests.fakes.anthropic_api import FakeAnthropic, message, review_tool
from tests.fakes.chat_api import FakeChat, completion


def review_context(market: MarketContext) -> ReviewContext:
    return ReviewContext(
        symbol="BTC-PERP", key="BTC-PERP:bfa-1", triggers=["halfway: close 47,500.00 is half-way"],
        position={"side": "long", "quantity": 0.02, "entry_price": 46_800.0},
        plan={"stop": 46_000.0, "take_profit": 48_200.0, "risk_per_unit": 800.0},
        entry={"analyst": "claude", "rationale": "breakout above the range with volume"},
        since={"price": 47_500.0, "r_now": 0.875, "mfe": 750.0, "mae": -120.0, "fills": []},
        market=market,
    )  # fmt: skip


def calls(database: Database) -> list[AiCallRow]:
    with database.session() as session:
        return list(session.scalars(select(AiCallRow).order_by(AiCallRow.id)))


@pytest.mark.parametrize(
    "raw",
    [
        {"action": "sell", "reason": "x"},
        {"action": "reduce", "reason": "x"},
        {"action": "reduce", "fraction": 1.0, "reason": "x"},
        {"action": "reduce", "fraction": 0, "reason": "x"},
        {"action": "move_stop", "reason": "x"},
        {"action": "move_stop", "new_stop": -5, "reason": "x"},
        {"action": "hold", "reason": ""},
        {"action": "hold", "reason": "x", "leverage": 5},
        "hold",
    ],
)
def test_a_malformed_answer_is_invalid_input_naming_the_problem(raw: Any) -> None:
    with pytest.raises(InvalidInput) as problem:
        parse_review(raw)
    assert problem.value.problems


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=10))
def test_a_reduce_is_valid_exactly_for_a_fraction_strictly_between_0_and_1(fraction: float) -> None:
    raw = {"action": "reduce", "fraction": fraction, "reason": "trim"}
    if 0 < fraction < 1:
        assert parse_review(raw).fraction == fraction
    else:
        with pytest.raises(InvalidInput):
            parse_review(raw)


def test_the_prompt_shows_the_position_its_entry_plan_history_and_market(context: MarketContext) -> None:
    prompt = build_review_prompt(review_context(context))
    text = prompt.text
    for shown in ("breakout above the range with volume", "half-way", '"risk_per_unit": 800.0',
                  '"mae": -120.0', "Per timeframe", "position_review"):  # fmt: skip
        assert shown in text
    assert prompt.version == "review_v1" and build_review_prompt(review_context(context)).hash == prompt.hash


def test_claude_reviews_through_the_forced_tool_audited_and_costed(
    claude_api: FakeAnthropic, database: Database, context: MarketContext
) -> None:
    claude_api.queue.clear()
    claude_api.queue.append(
        ("json", 200, review_tool({"action": "move_stop", "new_stop": 46_500.0, "reason": "r"}))
    )
    reviewer = AIReviewer(
        ClaudeAnalyst("sk-ant-test", AuditLog(database), base_url=claude_api.url), lambda: 0, 5
    )
    outcome = reviewer.review(review_context(context))
    assert outcome.status == "answered" and outcome.answer is not None and outcome.answer.new_stop == 46_500.0
    body = claude_api.requests[-1]["body"]
    assert body["tool_choice"] == {"type": "tool", "name": "position_review"}
    (call,) = calls(database)
    assert call.id == outcome.call_id and call.signal_key == "review:BTC-PERP:bfa-1" and call.cost_usd > 0
    assert call.parsed["action"] == "move_stop"

    claude_api.queue.append(("json", 200, message([{"type": "text", "text": "I would hold"}], "end_turn")))
    outcome = reviewer.review(review_context(context))
    assert outcome.status == "invalid" and outcome.answer is None
    assert json.loads(calls(database)[-1].validation_errors)[0]["field"] == "content"


def test_a_chat_provider_reviews_and_one_that_is_down_gives_no_answer(
    chat_api: FakeChat, database: Database, context: MarketContext
) -> None:
    chat_api.queue.clear()
    chat_api.queue.append(
        ("json", 200, completion(json.dumps({"action": "reduce", "fraction": 0.5, "reason": "r"})))
    )
    analyst = ChatCompletionsAnalyst(
        "perplexity", chat_api.url, "sonar-pro", AuditLog(database), max_retries=0
    )
    reviewer = AIReviewer(analyst, lambda: 0, 0)
    outcome = reviewer.review(review_context(context))
    assert outcome.status == "answered" and outcome.answer is not None and outcome.answer.fraction == 0.5
    assert chat_api.requests[-1]["body"]["response_format"]["json_schema"]["name"] == "position_review"
    chat_api.queue.append(("json", 503, {"error": "down"}))
    outcome = reviewer.review(review_context(context))
    assert outcome.status == "failed" and outcome.answer is None and "503" in outcome.problem
    assert calls(database)[-1].error  # the failure audited


def test_past_the_budget_nothing_is_asked(
    claude_api: FakeAnthropic, database: Database, context: MarketContext
) -> None:
    asked = len(claude_api.requests)
    reviewer = AIReviewer(
        ClaudeAnalyst("sk-ant-test", AuditLog(database), base_url=claude_api.url), lambda: 5.0, 5
    )
    assert reviewer.review(review_context(context)).status == "budget"
    assert len(claude_api.requests) == asked and calls(database) == []


def test_only_ai_analysts_get_a_reviewer_and_not_while_the_breaker_is_open(
    database: Database, context: MarketContext
) -> None:
    claude = ClaudeAnalyst("sk-ant-test", AuditLog(database), base_url="http://127.0.0.1:9")
    wrapped = ResilientAnalyst(claude, HoldAnalyst(), lambda: 1.25, 3.0)
    reviewer = build_reviewer(wrapped)
    assert reviewer is not None and reviewer.asker is claude and reviewer.name == "claude"
    wrapped._open_until = float("inf")  # the breaker opened: the review is not asked
    outcome = reviewer.review(review_context(context))  # nothing listens at :9: it would fail otherwise
    assert outcome.status == "failed" and "circuit breaker" in outcome.problem and calls(database) == []
    assert build_reviewer(RulesAnalyst()) is None and build_reviewer(FollowAnalyst()) is None

"""AI position reviews: an AI analyst (Claude, Perplexity, OpenAI-compatible) looks at an open position and
answers hold / close / reduce / move_stop.

The prompt (``prompts/review_v1.txt``) holds the position with its entry decision and rationale, the plan
(stop, target), what happened since (PnL, R, the best and worst excursions, fills) and the market now, the
same sections the decision prompt shows. The answer is a forced tool call (Claude) or JSON following the
schema (chat completions), validated by ``ReviewModel``: a bad answer is no action, recorded with its
problems. Every call is audited in ``ai_calls`` (provider, tokens, cost), goes through AI_CACHE
(record/replay by prompt hash: ``cached_answer``) and stays inside AI_DAILY_BUDGET_USD (past it no review
is asked; nor while the provider's circuit breaker is open). What the answer does to the position is the
engine's business (``agent.engine.reviews``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.analysis.audit import AuditLog, CallRecord
from agent.analysis.base import Analyst, MarketContext
from agent.analysis.prompts import PROMPTS, Prompt, market_sections
from agent.analysis.schema import validated
from shared.errors import InvalidInput, Temporary

VERSION = "review_v1"
TOOL_NAME = "position_review"


class ReviewModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["hold", "close", "reduce", "move_stop"]
    fraction: float | None = Field(default=None, gt=0, lt=1)
    new_stop: float | None = Field(default=None, gt=0)
    reason: str = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _needs(self) -> ReviewModel:
        if self.action == "reduce" and self.fraction is None:
            raise ValueError("a reduce needs a fraction in (0, 1)")
        if self.action == "move_stop" and self.new_stop is None:
            raise ValueError("a move_stop needs new_stop")
        return self


@dataclass(frozen=True)
class ReviewAnswer:
    action: str
    reason: str
    fraction: float | None = None
    new_stop: float | None = None


def review_schema() -> dict[str, Any]:
    """The JSON schema of the ``position_review`` tool's input."""
    return ReviewModel.model_json_schema()


def parse_review(raw: Any) -> ReviewAnswer:
    """Validate an answer; raise InvalidInput naming every problem."""
    model = validated(ReviewModel, raw)
    return ReviewAnswer(model.action, model.reason, model.fraction, model.new_stop)


@dataclass(frozen=True)
class ReviewContext:
    """What the reviewer is shown of one open position."""

    symbol: str
    key: str  # the entry order the position rests on (the audit's signal_key names it)
    triggers: Sequence[str]  # why now: "timer: ...", "halfway: ..."
    position: Mapping[str, Any]  # side, quantity, entry price, opened at
    plan: Mapping[str, Any]  # stop, initial stop, target, risk per unit, stop kind
    entry: Mapping[str, Any]  # the entry decision: analyst, action, confidence, rationale
    since: Mapping[str, Any]  # price, PnL, R, MFE/MAE, fills
    market: MarketContext  # the market now, as a decision sees it


def build_review_prompt(context: ReviewContext) -> Prompt:
    parts = market_sections(context.market)
    snapshot = context.market.snapshot
    moment = snapshot.time.isoformat() if snapshot is not None and snapshot.time is not None else "n/a"
    timeframes = "\n".join(p for p in (parts["timeframes_core"], parts["timeframes_edges"]) if p)
    text = (PROMPTS / f"{VERSION}.txt").read_text().format(
        triggers="\n".join(f"- {t}" for t in context.triggers), symbol=context.symbol,
        position=json.dumps(dict(context.position), sort_keys=True, default=str),
        plan=json.dumps(dict(context.plan), sort_keys=True, default=str),
        entry=json.dumps(dict(context.entry), sort_keys=True, default=str),
        since=json.dumps(dict(context.since), sort_keys=True, default=str),
        price=context.market.price, time=moment, timeframes=timeframes,
        levels=parts["levels"], book=parts["book"], funding=parts["funding"],
    )  # fmt: skip
    return Prompt(VERSION, text)


class StructuredAsker(Protocol):
    """An AI analyst that answers a prompt through a tool's schema (``ClaudeAnalyst``,
    ``ChatCompletionsAnalyst``)."""

    name: str
    model: str
    audit: AuditLog

    def ask_structured(self, record: CallRecord, tool: tuple[str, str, dict[str, Any]]) -> Any: ...


@dataclass
class ReviewOutcome:
    """What one review asked and got: ``answer`` None unless ``status`` is ``answered``."""

    status: Literal["answered", "invalid", "failed", "budget"]
    answer: ReviewAnswer | None = None
    problem: str = ""
    call_id: int | None = None
    cost_usd: float = 0.0
    prompt_hash: str = ""
    problems: list[dict[str, str]] = field(default_factory=list)


class AIReviewer:
    """Reviews positions with one AI analyst, audited, cached and inside the daily budget."""

    def __init__(
        self,
        asker: StructuredAsker,
        spent_today: Callable[[], float],
        daily_budget_usd: float,
        degraded: Callable[[], bool] = lambda: False,
    ) -> None:
        self.asker = asker
        self.name = asker.name
        self._spent_today = spent_today
        self._budget = daily_budget_usd
        self._degraded = degraded  # the provider's circuit breaker is open: not asked

    def review(self, context: ReviewContext) -> ReviewOutcome:
        prompt = build_review_prompt(context)
        if self._budget > 0 and self._spent_today() >= self._budget:
            return ReviewOutcome(
                "budget", problem=f"daily AI budget of {self._budget:g} USD reached", prompt_hash=prompt.hash
            )
        if self._degraded():
            problem = f"{self.name} degraded: its circuit breaker is open"
            return ReviewOutcome("failed", problem=problem, prompt_hash=prompt.hash)
        asker = self.asker
        record = CallRecord(
            asker.name, asker.model, prompt.version, prompt.hash, f"review:{context.key}", prompt.text
        )
        tool = (TOOL_NAME, "Record the review of the position.", review_schema())
        started = time.perf_counter()
        try:
            raw = asker.ask_structured(record, tool)
            answer = parse_review(raw)
        except Temporary as exc:  # audited where it failed
            return ReviewOutcome("failed", problem=asker.audit.redact(str(exc)), prompt_hash=prompt.hash)
        except InvalidInput as exc:
            problems = [p.as_dict() for p in exc.problems]
            record.finish(time.perf_counter() - started, validation=problems)
            call_id = asker.audit.write(record)
            return ReviewOutcome(
                "invalid", problem=str(exc), call_id=call_id, cost_usd=record.cost_usd,
                prompt_hash=prompt.hash, problems=problems,
            )  # fmt: skip
        parsed = {"action": answer.action, "fraction": answer.fraction, "new_stop": answer.new_stop}
        record.finish(time.perf_counter() - started, parsed=parsed)
        call_id = asker.audit.write(record)
        return ReviewOutcome("answered", answer, "", call_id, record.cost_usd, prompt.hash)


def build_reviewer(analyst: Analyst) -> AIReviewer | None:
    """The AI reviewer of the engine's analyst: its primary (inside the breaker, budget and fallback) when
    that answers structured prompts; None for rules (its own review) and follow (holds to its plan)."""
    primary: Any = getattr(analyst, "primary", analyst)
    if not callable(getattr(primary, "ask_structured", None)):
        return None
    spent: Callable[[], float] = getattr(analyst, "spent_today", None) or primary.audit.spent_today
    budget = float(getattr(analyst, "daily_budget_usd", 0.0))
    return AIReviewer(primary, spent, budget, lambda: bool(getattr(analyst, "degraded", False)))

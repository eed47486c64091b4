"""``ClaudeAnalyst``: the anthropic SDK's Messages API with a ``trade_decision`` tool the model is forced
to call. Every call is audited (prompt version and hash, raw answer, parsed decision or the validation
errors, latency, tokens, cost). Transport failures, 429/5xx/529 after the SDK's own bounded retries
(with backoff and jitter) and timeouts raise ``Temporary``; an answer that is not a valid decision
raises ``InvalidInput``. Neither ever becomes a trade."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import anthropic

from agent.analysis.audit import AuditLog, CallRecord, ResponseCache, cached_answer
from agent.analysis.base import Analyst, MarketContext
from agent.analysis.prompts import build_prompt
from agent.analysis.research import Researcher
from agent.analysis.schema import parse_decision, tool_schema
from shared.errors import FieldProblem, InvalidInput, Temporary
from shared.models import Decision, Signal

logger = logging.getLogger(__name__)
DEFAULT_MODEL = "claude-sonnet-4-6"
# USD per million tokens (input, output); unknown models are costed as the default
PRICES = {"claude-sonnet-4-6": (3.0, 15.0), "claude-haiku-4-5": (1.0, 5.0), "claude-opus-4-6": (5.0, 25.0)}


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> float:
    price_in, price_out = PRICES.get(model, PRICES[DEFAULT_MODEL])
    return (input_tokens * price_in + output_tokens * price_out) / 1_000_000


class ClaudeAnalyst(Analyst):
    name = "claude"
    wants_track_record = True

    def __init__(
        self,
        api_key: str,
        audit: AuditLog,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout_s: float = 20.0,
        max_retries: int = 2,
        max_leverage: float = 20.0,
        cache: ResponseCache | None = None,
        researcher: Researcher | None = None,
    ) -> None:
        self.researcher = researcher
        self.model = model
        self.audit = audit
        self.cache = cache
        self.max_leverage = max_leverage
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
        )

    def decide(self, signal: Signal, context: MarketContext) -> Decision:
        research = self.researcher.research(signal.symbol, signal, context) if self.researcher else None
        prompt = build_prompt(signal, context, self.max_leverage, research)
        record = CallRecord(
            self.name, self.model, prompt.version, prompt.hash, signal.idempotency_key, prompt.text
        )
        started = time.perf_counter()
        tool = ("trade_decision", "Record the trading decision.", tool_schema())
        answer = cached_answer(self.cache, self.audit, record, lambda: self._ask(record, tool, started))
        message = anthropic.types.Message.model_validate(answer)
        return self._finish(record, message, time.perf_counter() - started, context.price)

    def _ask(
        self, record: CallRecord, tool: tuple[str, str, dict[str, Any]], started: float
    ) -> dict[str, Any]:
        """One Messages call forcing ``tool`` (name, description, input schema) on ``record``'s prompt; a
        failure is audited and raised as Temporary."""
        name, description, schema = tool
        try:
            message = self._client.messages.create(
                model=self.model,
                max_tokens=1024,
                tools=[{"name": name, "description": description, "input_schema": schema}],
                tool_choice={"type": "tool", "name": name},
                messages=[{"role": "user", "content": record.prompt}],
            )
        except (anthropic.APIError, ValueError) as exc:  # ValueError: a body that is not JSON
            record.finish(time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
            self.audit.write(record)
            raise Temporary(f"claude unavailable: {type(exc).__name__}") from exc
        return message.model_dump(mode="json")

    def ask_structured(self, record: CallRecord, tool: tuple[str, str, dict[str, Any]]) -> Any:
        """``record``'s prompt answered through ``tool`` (AI_CACHE applies): the tool's input, with the
        tokens, cost and raw answer on ``record`` (not written: the caller concludes it). Raises Temporary
        (audited) or InvalidInput (no such tool call)."""
        started = time.perf_counter()
        answer = cached_answer(self.cache, self.audit, record, lambda: self._ask(record, tool, started))
        message = anthropic.types.Message.model_validate(answer)
        self._note(record, message)
        if message.stop_reason in ("max_tokens", "refusal"):
            raise InvalidInput([FieldProblem("stop_reason", f"the model stopped with {message.stop_reason}")])
        calls = [b for b in message.content if b.type == "tool_use" and b.name == tool[0]]
        if not calls:
            raise InvalidInput([FieldProblem("content", f"no {tool[0]} tool call (text-only answer)")])
        return calls[0].input

    def _note(self, record: CallRecord, message: Any) -> None:
        usage = message.usage
        record.tokens(
            usage.input_tokens,
            usage.output_tokens,
            cost_usd(self.model, usage.input_tokens, usage.output_tokens),
        )
        record.raw = json.dumps(message.model_dump(mode="json"))[:20_000]

    def _finish(self, record: CallRecord, message: Any, latency: float, price: float) -> Decision:
        self._note(record, message)
        return self.audit.conclude(record, latency, lambda: self._parse(message, price))

    def _parse(self, message: Any, price: float) -> Decision:
        if message.stop_reason in ("max_tokens", "refusal"):
            raise InvalidInput([FieldProblem("stop_reason", f"the model stopped with {message.stop_reason}")])
        calls = [b for b in message.content if b.type == "tool_use" and b.name == "trade_decision"]
        if not calls:
            raise InvalidInput([FieldProblem("content", "no trade_decision tool call (text-only answer)")])
        return parse_decision(calls[0].input, self.name, price, self.max_leverage)

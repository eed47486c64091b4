"""Analysts on the chat-completions API over httpx: Perplexity and any OpenAI-compatible server (Ollama,
vLLM, LM Studio). The answer is requested as JSON following the decision schema
(``response_format: json_schema``) and validated like every other analyst's. Retries on 429/5xx are
bounded, with exponential backoff and jitter (Retry-After honoured up to a cap). AI_CACHE=record keeps
every answer, replay answers from them with no HTTP call; AI_RESEARCH_PROVIDER's summary goes into the
prompt as for Claude. A provider's error text never carries the key (redacted before it is raised)."""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

import httpx

from agent.analysis.audit import AuditLog, CallRecord, ResponseCache, cached_answer
from agent.analysis.base import Analyst, MarketContext
from agent.analysis.prompts import build_prompt
from agent.analysis.schema import parse_decision, tool_schema
from shared.errors import FieldProblem, InvalidInput, Temporary
from shared.logs import redact_secrets
from shared.models import Decision, Signal

if TYPE_CHECKING:
    from agent.analysis.research import Researcher

# USD per million tokens (input, output); local models cost nothing
PRICES = {"sonar": (1.0, 1.0), "sonar-pro": (3.0, 15.0)}
RETRY_AFTER_CAP_S = 5.0


def note_usage(record: CallRecord, answer: dict[str, Any]) -> None:
    """A chat-completions answer's tokens, cost (PRICES by model) and raw text onto its call record."""
    usage = answer.get("usage") or {}
    tokens_in, tokens_out = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    price_in, price_out = PRICES.get(record.model, (0.0, 0.0))
    record.tokens(tokens_in, tokens_out, (tokens_in * price_in + tokens_out * price_out) / 1_000_000)
    record.raw = json.dumps(answer)[:20_000]


def post_chat(client: httpx.Client, body: dict[str, Any], max_retries: int, name: str) -> dict[str, Any]:
    """POST /chat/completions with bounded retries (backoff with jitter, Retry-After up to a cap) on
    connection errors, timeouts, 408, 429 and 5xx; anything else, or a body that is not a JSON object,
    raises Temporary at once."""
    problem = ""
    credential = client.headers.get("Authorization", "").removeprefix("Bearer ")
    for attempt in range(max_retries + 1):
        try:
            response = client.post("/chat/completions", json=body)
        except httpx.HTTPError as exc:  # connection refused, timeouts
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                try:
                    data = response.json()
                except ValueError:
                    raise Temporary(f"{name}: answer is not JSON") from None
                if not isinstance(data, dict):
                    raise Temporary(f"{name}: answer is not a JSON object")
                return data
            problem = f"HTTP {response.status_code}"
            if response.status_code not in (408, 429) and response.status_code < 500:
                raise Temporary(redact_secrets(f"{name}: {problem} {response.text[:200]}", [credential]))
            retry_after = response.headers.get("retry-after", "")
            if retry_after.replace(".", "", 1).isdigit():
                time.sleep(min(float(retry_after), RETRY_AFTER_CAP_S))
        if attempt < max_retries:
            time.sleep(0.2 * 2**attempt * (1 + random.random() * 0.5))
    raise Temporary(f"{name} failed after {max_retries + 1} attempts: {problem}")


class ChatCompletionsAnalyst(Analyst):
    wants_track_record = True

    def __init__(
        self,
        name: str,
        base_url: str,
        model: str,
        audit: AuditLog,
        api_key: str = "",
        timeout_s: float = 20.0,
        max_retries: int = 2,
        max_leverage: float = 20.0,
        cache: ResponseCache | None = None,
        researcher: Researcher | None = None,
    ) -> None:
        self.name = name
        self.cache = cache
        self.researcher = researcher
        self.model = model
        self.audit = audit
        self.max_retries = max_retries
        self.max_leverage = max_leverage
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    def decide(self, signal: Signal, context: MarketContext) -> Decision:
        research = self.researcher.research(signal.symbol, signal, context) if self.researcher else None
        prompt = build_prompt(signal, context, self.max_leverage, research)
        record = CallRecord(
            self.name, self.model, prompt.version, prompt.hash, signal.idempotency_key, prompt.text
        )
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt.text}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "trade_decision", "schema": tool_schema()}},
        }  # fmt: skip
        started = time.perf_counter()
        answer = self._answer(record, body, started)
        latency = time.perf_counter() - started
        return self.audit.conclude(record, latency, lambda: self._parse(answer, context.price))

    def ask_structured(self, record: CallRecord, tool: tuple[str, str, dict[str, Any]]) -> Any:
        """``record``'s prompt answered as JSON following ``tool``'s schema (name, description, schema;
        AI_CACHE applies): the JSON object, with the tokens, cost and raw answer on ``record`` (not written:
        the caller concludes it). Raises Temporary (audited) or InvalidInput (no JSON object)."""
        name, _, schema = tool
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": record.prompt}],
            "response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": schema}},
        }
        return self._content(self._answer(record, body, time.perf_counter()))

    def _answer(self, record: CallRecord, body: dict[str, Any], started: float) -> dict[str, Any]:
        """``body`` posted (or answered from AI_CACHE), its tokens and cost noted on ``record``; a failed
        call is audited (with the time since ``started``) before Temporary goes on."""

        def ask() -> dict[str, Any]:
            try:
                return self._post(body)
            except Temporary as exc:
                record.finish(time.perf_counter() - started, error=str(exc))
                self.audit.write(record)
                raise

        answer = cached_answer(self.cache, self.audit, record, ask)
        note_usage(record, answer)
        return answer

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        return post_chat(self._client, body, self.max_retries, self.name)

    def _parse(self, answer: dict[str, Any], price: float) -> Decision:
        return parse_decision(self._content(answer), self.name, price, self.max_leverage)

    @staticmethod
    def _content(answer: dict[str, Any]) -> Any:
        """The answer's message content as JSON; InvalidInput when there is none, it was cut, or it is not
        JSON."""
        try:
            choice = answer["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise InvalidInput([FieldProblem("choices", "no message in the answer")]) from None
        if choice.get("finish_reason") == "length":
            raise InvalidInput([FieldProblem("finish_reason", "the answer was cut at the token limit")])
        try:
            raw = json.loads(content)
        except (TypeError, ValueError):
            raise InvalidInput([FieldProblem("content", "not a JSON decision")]) from None
        return raw

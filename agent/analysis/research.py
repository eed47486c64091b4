"""AI_RESEARCH_PROVIDER=perplexity: a research step (news, sentiment, regime, risk factors for the asset)
whose summary goes into the deciding analyst's prompt. Answers are kept for ``ttl_s`` per symbol; when
research fails the decision goes on without it (and the prompt says so).

Each research call is audited like a decision call (provider ``research``, the question, the raw answer,
tokens and cost, under the signal's key), so it counts in the decision's cost and in AI_DAILY_BUDGET_USD.
With AI_CACHE it is recorded and replayed like the decisions: the cache key holds the symbol and the
``ttl_s`` window of the market time, so a replayed backtest gets the research its recording got."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import httpx

from agent.analysis.audit import AuditLog, CallRecord, ResponseCache, cached_answer
from agent.analysis.base import MarketContext
from agent.analysis.chat import note_usage, post_chat
from shared.errors import Temporary
from shared.logs import log_event
from shared.models import Signal

logger = logging.getLogger(__name__)
PROVIDER = "research"
PROMPT_VERSION = "research-1"
SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "sentiment": {"type": "number", "minimum": -1, "maximum": 1},
        "regime": {"type": "string"},
        "risks": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["summary", "sentiment"],
}


def _market_time_s(context: MarketContext | None) -> float:
    if context is None or context.candles.empty:
        return time.time()
    return float(context.candles.index[-1].timestamp())


class Researcher:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str,
        audit: AuditLog,
        timeout_s: float = 20.0,
        max_retries: int = 1,
        ttl_s: float = 900,
        cache: ResponseCache | None = None,
    ) -> None:
        self.model = model
        self.max_retries = max_retries
        self.ttl_s = ttl_s
        self.audit = audit
        self.cache = cache
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s
        )
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def research(
        self, symbol: str, signal: Signal | None = None, context: MarketContext | None = None
    ) -> dict[str, Any] | None:
        now = _market_time_s(context)
        cached = self._cache.get(symbol)
        if cached and 0 <= now - cached[0] < self.ttl_s:
            return cached[1]
        asset = symbol.removesuffix("-PERP")
        question = (
            f"Summarise, for a trader of the {asset} perpetual, today's news, market sentiment, "
            "the market regime and the main risk factors. Be factual and brief."
        )
        window = int(now // self.ttl_s)
        prompt_hash = hashlib.sha256(f"{question}\n{symbol}\n{window}".encode()).hexdigest()
        record = CallRecord(
            PROVIDER,
            self.model,
            PROMPT_VERSION,
            prompt_hash,
            signal.idempotency_key if signal else "",
            question,
        )
        started = time.perf_counter()
        try:
            answer = self._answer(record, question)
            content = json.loads(answer["choices"][0]["message"]["content"])
            if not isinstance(content, dict) or not isinstance(content.get("summary"), str):
                raise ValueError("no summary")
        except (Temporary, KeyError, IndexError, TypeError, ValueError) as exc:
            if not record.error:  # a replay without a recording is audited where it is found
                record.finish(time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
                self.audit.write(record)
            log_event(logger, "research_failed", logging.WARNING, symbol=symbol, error=record.error)
            return None
        result = {k: content[k] for k in ("summary", "sentiment", "regime", "risks") if k in content}
        record.finish(time.perf_counter() - started, parsed=result)
        self.audit.write(record)
        self._cache[symbol] = (now, result)
        return result

    def _answer(self, record: CallRecord, question: str) -> dict[str, Any]:
        """The provider's answer (or the recorded one under AI_CACHE=replay), its tokens and cost noted."""
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": question}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "research", "schema": SCHEMA}},
        }

        def ask() -> dict[str, Any]:
            return post_chat(self._client, body, self.max_retries, PROVIDER)

        answer = cached_answer(self.cache, self.audit, record, ask)
        note_usage(record, answer)
        return answer

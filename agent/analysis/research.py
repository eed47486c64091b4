"""AI_RESEARCH_PROVIDER=perplexity: a research step (news, sentiment, regime, risk factors for the asset)
whose summary goes into the deciding analyst's prompt. Answers are kept for ``ttl_s`` per symbol; when
research fails the decision goes on without it (and the prompt says so)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx

from agent.analysis.chat import post_chat
from shared.errors import Temporary
from shared.logs import log_event

logger = logging.getLogger(__name__)
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


class Researcher:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str,
        timeout_s: float = 20.0,
        max_retries: int = 1,
        ttl_s: float = 900,
    ) -> None:
        self.model = model
        self.max_retries = max_retries
        self.ttl_s = ttl_s
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s
        )
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def research(self, symbol: str) -> dict[str, Any] | None:
        cached = self._cache.get(symbol)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        asset = symbol.removesuffix("-PERP")
        question = (
            f"Summarise, for a trader of the {asset} perpetual, today's news, market sentiment, "
            "the market regime and the main risk factors. Be factual and brief."
        )
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": question}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "research", "schema": SCHEMA}},
        }
        try:
            answer = post_chat(self._client, body, self.max_retries, "research")
            content = json.loads(answer["choices"][0]["message"]["content"])
            if not isinstance(content, dict) or not isinstance(content.get("summary"), str):
                raise ValueError("no summary")
        except (Temporary, KeyError, IndexError, TypeError, ValueError) as exc:
            log_event(logger, "research_failed", logging.WARNING, symbol=symbol, error=str(exc))
            return None
        result = {k: content[k] for k in ("summary", "sentiment", "regime", "risks") if k in content}
        self._cache[symbol] = (time.monotonic(), result)
        return result

"""Every AI call, stored: provider, model, prompt version and hash, the prompt, the raw answer, the parsed
decision or its validation errors, latency, tokens and cost. Error texts and raw answers are stored with
secrets and key-shaped words redacted (a provider may echo the key in a 401)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from shared.db import AiCacheRow, AiCallRow, Database
from shared.errors import InvalidInput, Temporary
from shared.logs import redact_secrets
from shared.models import Decision


@dataclass
class CallRecord:
    provider: str
    model: str
    prompt_version: str
    prompt_hash: str
    signal_key: str
    prompt: str
    raw: str = ""
    parsed: dict[str, Any] | None = None
    validation: list[dict[str, str]] = field(default_factory=list)
    error: str = ""
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def tokens(self, input_tokens: int, output_tokens: int, cost: float) -> None:
        self.input_tokens, self.output_tokens, self.cost_usd = input_tokens, output_tokens, cost

    def finish(
        self,
        latency_s: float,
        parsed: dict[str, Any] | None = None,
        validation: list[dict[str, str]] | None = None,
        error: str = "",
    ) -> None:
        self.latency_ms = latency_s * 1000
        self.parsed, self.validation, self.error = parsed, validation or [], error


class ResponseCache:
    """AI_CACHE=record stores every answer by (provider, model, prompt hash); replay answers from it with
    no network, so an LLM strategy can be backtested reproducibly."""

    def __init__(self, db: Database, mode: str) -> None:
        if mode not in ("off", "record", "replay"):
            raise ValueError("AI_CACHE must be off, record or replay")
        self._db = db
        self.mode = mode

    @staticmethod
    def key(provider: str, model: str, prompt_hash: str) -> str:
        return f"{provider}:{model}:{prompt_hash}"

    def get(self, key: str) -> dict[str, Any] | None:
        with self._db.session() as session:
            row = session.get(AiCacheRow, key)
            return json.loads(row.answer) if row else None

    def put(self, key: str, answer: dict[str, Any]) -> None:
        if self.mode != "record":
            return
        with self._db.session() as session:
            session.merge(AiCacheRow(key=key, answer=json.dumps(answer)))


def cached_answer(
    cache: ResponseCache | None, audit: AuditLog, record: CallRecord, ask: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The provider's answer to ``record``'s prompt through AI_CACHE: under replay the recorded one (none
    recorded: Temporary, the call audited, nothing asked); else ``ask()``'s, recorded under record."""
    if cache is None:
        return ask()
    key = ResponseCache.key(record.provider, record.model, record.prompt_hash)
    if cache.mode == "replay":
        recorded = cache.get(key)
        if recorded is None:
            record.finish(0.0, error="AI_CACHE=replay: no recorded answer for this prompt")
            audit.write(record)
            raise Temporary(f"AI_CACHE=replay has no answer for prompt {record.prompt_hash[:12]}")
        return recorded
    answer = ask()
    cache.put(key, answer)
    return answer


class AuditLog:
    def __init__(self, db: Database, secrets: Iterable[str] = ()) -> None:
        self._db = db
        self._secrets = tuple(secrets)

    def redact(self, text: str) -> str:
        return redact_secrets(text, self._secrets)

    def write(self, record: CallRecord) -> int:
        """Store the call (secrets redacted); its ``ai_calls`` id."""
        record.error = self.redact(record.error)
        record.raw = self.redact(record.raw)
        with self._db.session() as session:
            row = AiCallRow(
                provider=record.provider,
                model=record.model,
                prompt_version=record.prompt_version,
                prompt_hash=record.prompt_hash,
                signal_key=record.signal_key,
                prompt=record.prompt,
                raw_output=record.raw,
                parsed=record.parsed or {},
                validation_errors=json.dumps(record.validation),
                error=record.error,
                latency_ms=record.latency_ms,
                input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
                cost_usd=record.cost_usd,
            )
            session.add(row)
            session.flush()
            return row.id

    def conclude(self, record: CallRecord, latency_s: float, parse: Callable[[], Decision]) -> Decision:
        """Parse the answer; store the call with the parsed decision or its validation errors either way."""
        try:
            decision = parse()
        except InvalidInput as exc:
            record.finish(latency_s, validation=[p.as_dict() for p in exc.problems])
            self.write(record)
            raise
        record.finish(latency_s, parsed={"action": decision.action.value, "confidence": decision.confidence})
        self.write(record)
        return decision

    def calls_for(self, signal_key: str) -> list[dict[str, Any]]:
        with self._db.session() as session:
            rows = session.scalars(
                select(AiCallRow).where(AiCallRow.signal_key == signal_key).order_by(AiCallRow.id)
            )
            return [
                {
                    "provider": r.provider,
                    "model": r.model,
                    "prompt_version": r.prompt_version,
                    "prompt_hash": r.prompt_hash,
                    "raw_output": r.raw_output,
                    "parsed": r.parsed,
                    "validation_errors": json.loads(r.validation_errors or "[]"),
                    "error": r.error,
                    "latency_ms": r.latency_ms,
                    "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens,
                    "cost_usd": r.cost_usd,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]

    def spent_today(self) -> float:
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        with self._db.session() as session:
            return float(
                session.scalar(
                    select(func.coalesce(func.sum(AiCallRow.cost_usd), 0.0)).where(
                        AiCallRow.created_at >= start
                    )
                )
                or 0.0
            )

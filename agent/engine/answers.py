"""Answers in flight: an AI analyst's validated decision, kept before risk and execution.

A crash between the answer and the committed decision would otherwise ask (and pay) the provider again
after the restart. The kept answer is reused while its signal is within SIGNAL_MAX_AGE_S (an older signal
is recorded as expired, as any other, and its answer dropped), and dropped once the decision is committed.
Kept in the ``ai_cache`` table under ``answered:<signal key>`` (no provider name starts so)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from shared.db import AiCacheRow, Database
from shared.models import Decision, DecisionAction

PREFIX = "answered:"


def _as_dict(decision: Decision) -> dict[str, Any]:
    return {**asdict(decision), "action": decision.action.value}


def _from_dict(data: dict[str, Any]) -> Decision:
    return Decision(
        **{**data, "action": DecisionAction(data["action"]), "take_profits": tuple(data["take_profits"])}
    )


class AnswersInFlight:
    def __init__(self, db: Database) -> None:
        self._db = db

    def kept(self, signal_key: str) -> Decision | None:
        with self._db.session() as session:
            row = session.get(AiCacheRow, PREFIX + signal_key)
            return _from_dict(json.loads(row.answer)) if row is not None else None

    def keep(self, signal_key: str, decision: Decision) -> None:
        with self._db.session() as session:
            session.merge(AiCacheRow(key=PREFIX + signal_key, answer=json.dumps(_as_dict(decision))))

    def drop(self, signal_key: str) -> None:
        with self._db.session() as session:
            row = session.get(AiCacheRow, PREFIX + signal_key)
            if row is not None:
                session.delete(row)

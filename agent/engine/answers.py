"""Answers in flight: an AI analyst's validated decision, kept before risk and execution.

A crash between the answer and the committed decision would otherwise ask (and pay) the provider again
after the restart. The kept answer is reused while its signal is within SIGNAL_MAX_AGE_S (an older signal
is recorded as expired, as any other, and its answer dropped), and dropped once the decision is committed.
Kept in the ``ai_cache`` table under ``answered:<signal key>`` (no provider name starts so)."""

from __future__ import annotations

import json
from typing import Any

from shared.db import AiCacheRow, Database
from shared.models import Decision, DecisionAction

PREFIX = "answered:"


def _as_dict(decision: Decision) -> dict[str, Any]:
    return {
        "action": decision.action.value, "confidence": decision.confidence, "rationale": decision.rationale,
        "analyst": decision.analyst, "stop_loss": decision.stop_loss, "take_profit": decision.take_profit,
        "factors": decision.factors, "entry_type": decision.entry_type, "entry_price": decision.entry_price,
        "take_profits": list(decision.take_profits), "leverage": decision.leverage,
        "time_horizon": decision.time_horizon,
    }  # fmt: skip


def _from_dict(data: dict[str, Any]) -> Decision:
    return Decision(
        DecisionAction(data["action"]), float(data["confidence"]), str(data["rationale"]),
        str(data["analyst"]), stop_loss=data["stop_loss"], take_profit=data["take_profit"],
        factors=dict(data["factors"]), entry_type=str(data["entry_type"]), entry_price=data["entry_price"],
        take_profits=tuple(data["take_profits"]), leverage=data["leverage"],
        time_horizon=str(data["time_horizon"]),
    )  # fmt: skip


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

"""Why signals did not trade, counted: every veto by its rule, and the signal sources Kelly shut out.

A decision is a veto when risk refused it, or when it refused the entry of a flip and only closed the
position it argued against (``vetoed_by`` in its risk details). The rule is the gate's ``rule`` (hold,
trading_state, market_blocked, confidence, stop, take_profit, reward_risk, open_positions, liquidation,
kelly, size, already_positioned, nothing_to_close, position_kept) or the engine's ``expired``
(SIGNAL_MAX_AGE_S). Shown in the backtest report, ``/api/performance`` and the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from shared.db import Database, DecisionRow, SignalRow


@dataclass
class SourceVeto:
    """A signal source Kelly vetoed: how often, from when, and its record as the first veto said it."""

    source: str
    vetoes: int
    first_at: str | None  # the first vetoed signal's time (market time in a backtest)
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "vetoes": self.vetoes, "first_at": self.first_at, "reason": self.reason,
        }  # fmt: skip


@dataclass
class VetoSummary:
    by_rule: dict[str, int] = field(default_factory=dict)  # rule -> vetoes, most first (then by name)
    sources_vetoed: list[SourceVeto] = field(default_factory=list)  # Kelly's, by source

    @property
    def total(self) -> int:
        return sum(self.by_rule.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_rule": dict(self.by_rule),
            "sources_vetoed": [s.as_dict() for s in self.sources_vetoed],
        }


def veto_rule(approved: bool, risk: dict[str, Any] | None) -> str | None:
    """The rule that vetoed a decision (None: not a veto)."""
    details = risk or {}
    if approved and "vetoed_by" not in details:
        return None
    return str(details.get("rule") or "other")


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def summarise(rows: list[tuple[bool, dict[str, Any] | None, str, str, datetime | None]]) -> VetoSummary:
    """``rows``: (approved, risk details, risk reason, signal source, signal time), in decision order."""
    counts: dict[str, int] = {}
    sources: dict[str, SourceVeto] = {}
    for approved, risk, reason, source, moment in rows:
        rule = veto_rule(approved, risk)
        if rule is None:
            continue
        counts[rule] = counts.get(rule, 0) + 1
        if rule == "kelly":
            seen = sources.get(source)
            if seen is None:
                text = str((risk or {}).get("vetoed_by") or reason)
                sources[source] = SourceVeto(source, 1, _iso(moment), text)
            else:
                seen.vetoes += 1
    ordered = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return VetoSummary(ordered, [sources[name] for name in sorted(sources)])


def veto_summary(db: Database) -> VetoSummary:
    """The vetoes of every decision in the journal."""
    query = (
        select(DecisionRow.risk_approved, DecisionRow.risk, DecisionRow.risk_reason, SignalRow.source,
               SignalRow.alert_time, SignalRow.received_at)
        .join(SignalRow, SignalRow.id == DecisionRow.signal_id)
        .order_by(DecisionRow.id)
    )  # fmt: skip
    with db.session() as session:
        rows = [
            (bool(approved), risk, reason or "", source, alert_time or received_at)
            for approved, risk, reason, source, alert_time, received_at in session.execute(query)
        ]
    return summarise(rows)

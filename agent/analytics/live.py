"""Live analytics from the journal: the backtest's metrics over the paper or live trades.

``journal_performance`` serves ``GET /api/performance``: the metrics of every closed trade (equity rebuilt
from the trades, starting at the account's starting equity), then the same trade statistics per symbol,
per signal source and per analyst. ``write_daily_report`` writes ``DATA_DIR/reports/daily-YYYY-MM-DD.json``
when a UTC day closes: that day's trades and metrics, plus everything to date.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from agent.analytics.performance import (
    TradeRecord,
    breakdown,
    compute_metrics,
    equity_from_trades,
    with_llm_cost,
)
from shared.db import AiCallRow, Database, SignalRow, TradeRow


def trade_records(
    db: Database, since: datetime | None = None, until: datetime | None = None
) -> list[TradeRecord]:
    """Closed trades (one per position, with its fills as ``legs``) from the journal, oldest first
    (optionally those closed in [since, until))."""
    query = select(TradeRow).order_by(TradeRow.closed_at, TradeRow.id)
    if since is not None:
        query = query.where(TradeRow.closed_at >= since)
    if until is not None:
        query = query.where(TradeRow.closed_at < until)
    with db.session() as session:
        return [
            TradeRecord(
                symbol=r.symbol, side=r.side, quantity=r.quantity, entry_price=r.entry_price,
                exit_price=r.exit_price, pnl=r.pnl, fees=r.fees, opened_at=r.opened_at, closed_at=r.closed_at,
                exit_reason=r.exit_reason, signal_source=r.signal_source, analyst=r.analyst,
                r_multiple=r.r_multiple, initial_risk=r.initial_risk, funding=r.funding or 0.0,
                forfeited=r.forfeited or 0.0, legs=tuple(r.legs or ()),
            )
            for r in session.scalars(query)
        ]  # fmt: skip


def journal_performance(
    trades: list[TradeRecord], starting_equity: float, fees_paid: float = 0.0, funding_paid: float = 0.0,
    llm_cost: LlmCosts | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The metrics; with ``llm_cost``, per analyst and per signal source the PnL gross and net of what the
    LLM calls cost, and the whole book's too (``llm_cost_usd``, ``pnl_net_of_llm_cost``)."""
    equity = equity_from_trades(trades, starting_equity)
    metrics = compute_metrics(
        equity, trades, starting_equity=starting_equity, fees_paid=fees_paid, funding_paid=funding_paid
    )
    by_source = breakdown(trades, lambda t: t.signal_source or "unknown")
    by_analyst = breakdown(trades, lambda t: t.analyst or "unknown")
    report: dict[str, Any] = {
        "overall": metrics.as_dict(),
        "by_symbol": breakdown(trades, lambda t: t.symbol),
        "by_signal_source": by_source,
        "by_analyst": by_analyst,
        "by_exit_reason": breakdown(trades, lambda t: t.exit_reason or "unknown"),
    }
    if llm_cost is not None:
        gross = sum(t.pnl for t in trades)
        total = sum(llm_cost.by_analyst.values())
        report["by_signal_source"] = with_llm_cost(by_source, llm_cost.by_source)
        report["by_analyst"] = with_llm_cost(by_analyst, llm_cost.by_analyst)
        report.update(pnl_gross=gross, llm_cost_usd=total, pnl_net_of_llm_cost=gross - total)
    return report


@dataclass(frozen=True)
class LlmCosts:
    """USD spent on AI calls: by analyst (the provider that was called) and, for the calls of the engine's
    analyst, by the signal source of the signal decided."""

    by_analyst: dict[str, float]
    by_source: dict[str, float]


def llm_costs(db: Database, engine_analyst: str) -> LlmCosts:
    with db.session() as session:
        providers = session.execute(
            select(AiCallRow.provider, func.coalesce(func.sum(AiCallRow.cost_usd), 0.0)).group_by(
                AiCallRow.provider
            )
        ).all()
        sources = session.execute(
            select(SignalRow.source, func.coalesce(func.sum(AiCallRow.cost_usd), 0.0))
            .join(SignalRow, SignalRow.idempotency_key == AiCallRow.signal_key)
            .where(AiCallRow.provider == engine_analyst)
            .group_by(SignalRow.source)
        ).all()
    return LlmCosts({str(p): float(c) for p, c in providers}, {str(s): float(c) for s, c in sources})


def write_daily_report(db: Database, day: str, out_dir: Path, starting_equity: float) -> Path:
    """The report of the UTC day ``day`` (YYYY-MM-DD) and of everything up to its end."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    end = start + timedelta(days=1)
    to_date = trade_records(db, until=end)
    closed_before = sum(t.pnl for t in to_date if t.closed_at < start)
    today = [t for t in to_date if t.closed_at >= start]
    report = {
        "date": day,
        "that_day": journal_performance(today, starting_equity + closed_before) if today else None,
        "to_date": journal_performance(to_date, starting_equity),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"daily-{day}.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    return path

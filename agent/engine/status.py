"""The engine's status and risk report: what ``/api/status`` and ``/api/risk`` show and the journal publishes.

``EngineStatus`` is the loop's own state (running, paused with a reason, stopped) and its counters;
``engine_snapshot`` adds the trading state, the feeds and the account; ``engine_risk_report`` the portfolio's
risk figures (``agent.risk.report``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from agent.risk.report import HeldPosition, risk_report
from shared.exchange.margin import liquidation_price

if TYPE_CHECKING:
    from agent.engine.engine import Engine


@dataclass
class EngineStatus:
    state: str = "starting"  # starting | running | paused | stopped
    reason: str = ""
    candles_seen: int = 0
    signals_processed: int = 0
    market_time: datetime | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def last_candle_time(self) -> str | None:
        return self.market_time.isoformat() if self.market_time else None


def engine_snapshot(engine: Engine) -> dict[str, Any]:
    """What the status shows: the loop's state and reason, the trading state, the feeds, the account."""
    account = engine.exchange.account()
    return {
        "state": engine.status.state,
        "reason": engine.status.reason,
        "trading_state": engine.guard.view(account.equity),
        "exchange": engine.exchange.name,
        "analyst": engine.analyst.name,
        "analyst_degraded": bool(getattr(engine.analyst, "degraded", False)),
        "analyst_problem": getattr(engine.analyst, "last_problem", "")
        if getattr(engine.analyst, "degraded", False)
        else "",
        "feed": {s: f.source for s, f in engine.feeds.items()},
        "stale": {s: f.stale for s, f in engine.feeds.items()},
        "external": engine.external,
        "prices": {s: engine.exchange.mark_price(s) for s in engine.feeds},
        "candles_seen": engine.status.candles_seen,
        "signals_processed": engine.status.signals_processed,
        "market_time": engine.status.last_candle_time,
        "balance": account.balance,
        "equity": account.equity,
        "unrealized_pnl": account.unrealized_pnl,
        "fees_paid": account.fees_paid,
        "started_at": engine.status.started_at,
    }


def engine_risk_report(engine: Engine) -> dict[str, Any]:
    """Trading state, limits and portfolio risk metrics (``agent.risk.report``)."""
    account = engine.exchange.account()
    listed = engine.exchange.exchange_positions()
    liquidations = {p.position.symbol: p.liquidation_price for p in listed}
    held = []
    with engine.store.transaction() as records:
        rows = records.positions()
    for row in rows:
        market = engine.markets.get(row.symbol)
        atr = market.indicator(engine.policy.atr_timeframe, "atr") if market else math.nan
        liquidation = liquidations.get(row.symbol) or liquidation_price(
            row.entry_price,
            row.quantity,
            abs(row.quantity) * row.entry_price / engine.policy.order_leverage,
            engine.exchange.market_spec(row.symbol).maintenance_margin_ratio,
        )
        mark = engine.exchange.mark_price(row.symbol) or row.entry_price
        held.append(
            HeldPosition(
                row.symbol, row.quantity, row.entry_price, mark, liquidation, atr if atr == atr else None,
                market.funding.rate if market and market.funding else None,
            )
        )  # fmt: skip
    returns = pd.DataFrame({s: m.closes("1h") for s, m in engine.markets.items()}).pct_change(
        fill_method=None
    )
    return risk_report(
        held, returns, account.equity, list(engine.equity_samples), engine.guard.status.peak_equity,
        engine.correlations() if len(held) > 1 else {}, engine.policy, engine.guard.view(account.equity),
        engine.funding_interval_hours,
    )  # fmt: skip

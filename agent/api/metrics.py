"""The agent's trading metrics, read at scrape time (nothing is counted in the trading path).

``agent_collectors(engine, db)`` -> the collectors for ``shared.metrics.install_metrics(app, "agent", ...)``:

- ``bluefinai_engine_loop_lag_seconds``: seconds since the engine loop last finished a pass;
- ``bluefinai_engine_running``: 1 while the engine runs, 0 while it is paused (``bluefinai_engine_state``);
- ``bluefinai_trading_state{state}``: 1 for the current trading state (ACTIVE / REDUCING / HALTED);
- ``bluefinai_equity_usd``: the account equity after the latest candle;
- ``bluefinai_orders{status}``: orders in the journal by status (LOST ones need a human);
- ``bluefinai_signal_to_order_seconds{quantile}``: from a signal's arrival to its first order, over the latest
  ``SIGNAL_WINDOW`` signals that made an order (``bluefinai_signal_to_order_signals``: how many);
- ``bluefinai_ai_calls_total{provider,outcome}`` (ok / invalid / error), ``bluefinai_ai_tokens_total{provider,
  direction}`` and ``bluefinai_ai_cost_usd_total{provider}``: from the AI audit table (AI_RETENTION prunes it,
  which Prometheus reads as a counter reset).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError

from agent.engine.engine import Engine
from agent.risk.state import STATES
from shared.db import AiCallRow, Database, OrderRow, SignalRow
from shared.logs import log_event
from shared.models import OrderStatus

logger = logging.getLogger(__name__)
SIGNAL_WINDOW = 200
QUANTILES = (0.5, 0.9, 0.99, 1.0)


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of sorted ``values`` (linear interpolation, like numpy's default)."""
    if len(values) == 1:
        return values[0]
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


class AgentCollector(Collector):
    def __init__(self, engine: Engine, db: Database) -> None:
        self.engine, self.db = engine, db

    def collect(self) -> Iterator[Metric]:
        yield from self._engine_metrics()
        try:
            yield from self._journal_metrics()
        except SQLAlchemyError as exc:  # a scrape never fails because the database is busy
            log_event(logger, "metrics_db_failed", logging.WARNING, error=str(exc))

    def _engine_metrics(self) -> Iterator[Metric]:
        engine = self.engine
        lag = GaugeMetricFamily(
            "bluefinai_engine_loop_lag_seconds", "Seconds since the engine loop last finished a pass"
        )
        lag.add_metric([], max(0.0, time.monotonic() - engine.last_pass_at))
        yield lag
        running = GaugeMetricFamily("bluefinai_engine_running", "1 while the engine runs, 0 while paused")
        running.add_metric([], 1.0 if engine.status.state == "running" else 0.0)
        yield running
        state = GaugeMetricFamily(
            "bluefinai_trading_state", "1 for the current trading state", labels=["state"]
        )
        for name in STATES:
            state.add_metric([name], 1.0 if engine.guard.state == name else 0.0)
        yield state
        equity = GaugeMetricFamily("bluefinai_equity_usd", "Account equity after the latest candle (USD)")
        equity.add_metric([], engine.last_equity)
        yield equity

    def _journal_metrics(self) -> Iterator[Metric]:
        with self.db.session() as session:
            by_status = dict(
                session.execute(select(OrderRow.status, func.count()).group_by(OrderRow.status)).all()
            )
            first_order = (
                select(SignalRow.received_at, func.min(OrderRow.created_at))
                .join(OrderRow, OrderRow.signal_id == SignalRow.id)
                .group_by(SignalRow.id)
                .order_by(SignalRow.id.desc())
                .limit(SIGNAL_WINDOW)
            )
            latencies = sorted(
                max(0.0, (ordered - received).total_seconds())
                for received, ordered in session.execute(first_order).all()
                if received is not None and ordered is not None
            )
            failed = AiCallRow.error != ""
            invalid = AiCallRow.validation_errors.notin_(("", "[]"))
            outcome = case((failed, "error"), (invalid, "invalid"), else_="ok")
            ai = session.execute(
                select(
                    AiCallRow.provider, outcome, func.count(), func.sum(AiCallRow.input_tokens),
                    func.sum(AiCallRow.output_tokens), func.sum(AiCallRow.cost_usd),
                ).group_by(AiCallRow.provider, outcome)
            ).all()  # fmt: skip

        orders = GaugeMetricFamily("bluefinai_orders", "Orders in the journal by status", labels=["status"])
        for status in OrderStatus:
            orders.add_metric([status.value], float(by_status.get(status.value, 0)))
        for other, count in by_status.items():
            if other not in OrderStatus.__members__:
                orders.add_metric([other], float(count))
        yield orders

        latency = GaugeMetricFamily(
            "bluefinai_signal_to_order_seconds",
            f"Seconds from a signal's arrival to its first order, over the latest {SIGNAL_WINDOW} signals",
            labels=["quantile"],
        )
        for q in QUANTILES if latencies else ():
            latency.add_metric([str(q)], quantile(latencies, q))
        yield latency
        window = GaugeMetricFamily("bluefinai_signal_to_order_signals", "Signals the latency quantiles cover")
        window.add_metric([], float(len(latencies)))
        yield window

        calls = CounterMetricFamily("bluefinai_ai_calls", "AI analyst calls", labels=["provider", "outcome"])
        tokens = CounterMetricFamily("bluefinai_ai_tokens", "AI tokens", labels=["provider", "direction"])
        cost = CounterMetricFamily("bluefinai_ai_cost_usd", "AI cost (USD)", labels=["provider"])
        per_provider: dict[str, list[float]] = {}
        for provider, kind, count, tokens_in, tokens_out, usd in ai:
            calls.add_metric([provider, kind], float(count))
            totals = per_provider.setdefault(provider, [0.0, 0.0, 0.0])
            totals[0] += float(tokens_in or 0)
            totals[1] += float(tokens_out or 0)
            totals[2] += float(usd or 0.0)
        for provider, (tokens_in, tokens_out, usd) in per_provider.items():
            tokens.add_metric([provider, "input"], tokens_in)
            tokens.add_metric([provider, "output"], tokens_out)
            cost.add_metric([provider], usd)
        yield calls
        yield tokens
        yield cost


def agent_collectors(engine: Engine, db: Database) -> list[Collector]:
    return [AgentCollector(engine, db)]

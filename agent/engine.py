"""The engine loop: market data -> signals -> analyst -> risk -> execution -> journal -> events.

One thread owns the loop. ``nudge()`` wakes it when the webhook stores a signal. On start it warms up the
candle history, reconciles orders left ``PENDING_SUBMIT`` by a crash and checks that the exchange's
positions match ours before it takes any decision. Each signal is decided once: the decision row's
``signal_id`` is unique, and the decision and its order are committed together.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from agent.analysis.base import Analyst, MarketContext
from agent.execution.algos import AlgoRunner
from agent.execution.brackets import Brackets
from agent.execution.orders import OrderExecutor, PlannedOrder
from agent.journal import Journal
from agent.risk.sizing import RiskLimits, RiskVerdict, assess
from shared.db import Database, DecisionRow, OrderRow, PositionRow, SignalRow
from shared.errors import BluefinAIError, Temporary
from shared.exchange.base import Exchange
from shared.logs import log_event
from shared.market_structure import correlation_matrix
from shared.marketdata.feeds import CANDLE_SECONDS, MarketFeed
from shared.marketdata.snapshot import MarketState
from shared.models import Candle, Decision, DecisionAction, OrderStatus, Position, Signal, SignalAction
from shared.serialize import decision_dict, order_dict, signal_dict

logger = logging.getLogger(__name__)
HISTORY_CANDLES = 300
STATUS_EVERY_S = 2.0
RECONCILE_EVERY_S = 5.0
DEAD_MAN_SWITCH_MS = 60_000


@dataclass
class EngineStatus:
    state: str = "starting"  # starting | running | paused | stopped
    reason: str = ""
    candles_seen: int = 0
    signals_processed: int = 0
    last_candle_time: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class Engine:
    def __init__(
        self,
        db: Database,
        exchange: Exchange,
        analyst: Analyst,
        feeds: list[MarketFeed],
        journal: Journal,
        limits: RiskLimits,
        candle_interval_s: float,
    ) -> None:
        self.db = db
        self.exchange = exchange
        self.analyst = analyst
        self.feeds = {feed.symbol: feed for feed in feeds}
        self.journal = journal
        self.limits = limits
        self.executor = OrderExecutor(db, exchange, journal)
        self.brackets = Brackets(db, self.executor)
        self.algos = AlgoRunner(db, self.executor, exchange, limits.leverage)
        self.candle_interval_s = candle_interval_s
        self.history: dict[str, deque[Candle]] = {s: deque(maxlen=HISTORY_CANDLES) for s in self.feeds}
        self.markets = {s: MarketState(s, feed.source) for s, feed in self.feeds.items()}
        self.status = EngineStatus()
        self.external: dict[str, str] = {}  # market -> why it is blocked for new entries
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.status.state = "stopped"

    def nudge(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        try:
            self.prepare()
        except BluefinAIError as exc:
            self._pause(f"start-up failed: {exc}")
        next_candle = time.monotonic() + self.candle_interval_s
        next_status = 0.0
        next_reconcile = time.monotonic() + RECONCILE_EVERY_S
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_candle:
                    self.step_market()
                    next_candle = max(next_candle + self.candle_interval_s, now)
                if self.status.state == "paused" and now >= next_reconcile:
                    self.reconcile()  # retried until the exchange can be read
                    next_reconcile = now + RECONCILE_EVERY_S
                if self.status.state == "running":
                    if now >= next_reconcile:
                        self.maintain_orders()
                        self._refresh_dead_man_switch()
                        next_reconcile = now + RECONCILE_EVERY_S
                    self.process_pending_signals()
                if now >= next_status:
                    self.publish_status()
                    next_status = now + STATUS_EVERY_S
            except BluefinAIError as exc:
                log_event(logger, "engine_step_failed", logging.ERROR, error=str(exc))
            except Exception:
                logger.exception("engine_step_crashed")
                time.sleep(1.0)
            self._wake.wait(max(0.0, min(next_candle, next_status) - time.monotonic()))
            self._wake.clear()

    # start-up ----------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Warm up history, reconcile with the exchange; trading starts only if all of that succeeds."""
        for symbol, feed in self.feeds.items():
            for candle in feed.history(HISTORY_CANDLES):
                self._take_candle(candle)
            log_event(
                logger, "history_loaded", symbol=symbol, candles=len(self.history[symbol]), source=feed.source
            )
        self.reconcile()

    def reconcile(self) -> None:
        """Match the exchange's orders and positions to ours before any decision. Orders and positions we
        did not make are EXTERNAL and block new entries in their market; if the exchange cannot be read,
        trading stays paused and the status says why."""
        try:
            resolved = self.executor.reconcile_pending()
            self.external = self._find_external()
        except Temporary as exc:
            self._pause(f"reconciliation failed, retrying: {exc}")
            return
        for symbol, reason in self.external.items():
            log_event(logger, "external_activity", logging.ERROR, symbol=symbol, reason=reason, alert=True)
        self.status.state, self.status.reason = "running", ""
        log_event(logger, "engine_running", reconciled_orders=resolved, external=sorted(self.external))

    def _refresh_dead_man_switch(self) -> None:
        """On Bluefin, push the cancel-on-disconnect timer forward: if this loop dies, open orders go."""
        refresh = getattr(self.exchange, "refresh_cancel_on_disconnect", None)
        if refresh is not None:
            try:
                refresh(DEAD_MAN_SWITCH_MS)
            except Temporary as exc:
                log_event(logger, "dead_man_switch_refresh_failed", logging.WARNING, error=str(exc))

    def maintain_orders(self) -> None:
        """Fold in what happened to open orders (fills of stops and targets), then keep brackets OCO."""
        self.executor.reconcile_pending()
        if self.brackets.maintain():
            self.executor.reconcile_pending()
        self.algos.step(self.market_now())

    def market_now(self) -> datetime:
        """The market clock: the close time of the latest candle (wall time before the first one)."""
        stamp = self.status.last_candle_time
        return datetime.fromisoformat(stamp) if stamp else datetime.now(UTC)

    def _find_external(self) -> dict[str, str]:
        external: dict[str, str] = {}
        batch = self.journal.pending()
        with self.db.session() as session:
            known = set(session.scalars(select(OrderRow.client_id)))
            for result in self.exchange.open_orders():
                if result.client_id in known:
                    continue
                symbol = result.symbol
                row = OrderRow(
                    client_id=result.client_id,
                    symbol=symbol,
                    side=result.side.value if result.side else "?",
                    order_type=result.order_type.value if result.order_type else "?",
                    quantity=result.quantity,
                    status=OrderStatus.EXTERNAL.value,
                    exchange_id=result.exchange_id,
                    reason="open on the exchange, not placed by this platform",
                )
                session.add(row)
                session.flush()
                batch.record(session, "order", order_dict(row))
                external[symbol] = f"external open order {result.client_id}"
            theirs = {p.symbol: p.quantity for p in self.exchange.positions()}
            ours = {r.symbol: r.quantity for r in session.scalars(select(PositionRow)) if r.quantity}
            for symbol in sorted(set(theirs) | set(ours)):
                if abs(ours.get(symbol, 0.0) - theirs.get(symbol, 0.0)) > 1e-9:
                    external[symbol] = (
                        f"position: ours {ours.get(symbol, 0.0)} vs exchange {theirs.get(symbol, 0.0)}"
                    )
        batch.flush()
        return external

    def _pause(self, reason: str) -> None:
        self.status.state, self.status.reason = "paused", reason
        log_event(logger, "trading_paused", logging.ERROR, reason=reason)

    # market data -------------------------------------------------------------------------------------
    def _take_candle(self, candle: Candle) -> None:
        market = self.markets[candle.symbol]
        if market.time is not None and candle.open_time <= market.time:  # the replay started over
            log_event(logger, "replay_restarted", symbol=candle.symbol, at=candle.open_time.isoformat())
            self.markets[candle.symbol] = market = MarketState(candle.symbol, market.source)
            self.history[candle.symbol].clear()
        market.add_minute(candle)
        self.history[candle.symbol].append(candle)
        close_time = candle.open_time + timedelta(seconds=CANDLE_SECONDS)
        on_price = getattr(self.exchange, "on_price", None)
        if on_price is not None:  # a simulated exchange follows the market through the candles
            on_price(candle.symbol, candle.close, close_time, candle.high, candle.low)
        self.status.last_candle_time = close_time.isoformat()

    def step_market(self) -> None:
        for symbol, feed in self.feeds.items():
            for candle in feed.poll():
                self._take_candle(candle)
                self.status.candles_seen += 1
                self.journal.publish(
                    "market",
                    {"symbol": symbol, "price": candle.close, "time": self.status.last_candle_time,
                     "source": feed.source, "stale": feed.stale},
                )  # fmt: skip
            market = self.markets[symbol]
            market.stale = feed.stale
            market.book, market.funding = feed.derivatives()
            if market.funding is not None and hasattr(self.exchange, "set_funding_rate"):
                self.exchange.set_funding_rate(market.funding)

    def candles_frame(self, symbol: str) -> pd.DataFrame:
        candles = self.history[symbol]
        return pd.DataFrame(
            {
                "open": [c.open for c in candles],
                "high": [c.high for c in candles],
                "low": [c.low for c in candles],
                "close": [c.close for c in candles],
                "volume": [c.volume for c in candles],
            },
            index=pd.DatetimeIndex([c.open_time for c in candles], tz=UTC),
        )

    # signals -----------------------------------------------------------------------------------------
    def process_pending_signals(self) -> int:
        with self.db.session() as session:
            pending = list(
                session.scalars(
                    select(SignalRow.id)
                    .outerjoin(DecisionRow, DecisionRow.signal_id == SignalRow.id)
                    .where(DecisionRow.id.is_(None))
                    .order_by(SignalRow.id)
                    .limit(100)
                )
            )
        for signal_id in pending:
            self.process_signal(signal_id)
        return len(pending)

    def process_signal(self, signal_id: int) -> None:
        with self.db.session() as session:
            row = session.get(SignalRow, signal_id)
            if row is None or session.scalar(
                select(DecisionRow.id).where(DecisionRow.signal_id == signal_id)
            ):
                return
            signal = _signal_from_row(row)
        position = self._position(signal.symbol)
        price = self.exchange.mark_price(signal.symbol)
        if signal.symbol not in self.feeds or price is None:
            decision = Decision(DecisionAction.HOLD, 0.0, f"no market data for {signal.symbol}", "engine")
        elif (unknown := self._unresolved_order(signal.symbol)) and signal.action is not SignalAction.CLOSE:
            decision = Decision(
                DecisionAction.HOLD,
                0.0,
                f"the outcome of order {unknown} in {signal.symbol} is not known yet",
                "engine",
            )
        elif signal.symbol in self.external and signal.action is not SignalAction.CLOSE:
            decision = Decision(
                DecisionAction.HOLD,
                0.0,
                f"{signal.symbol} has EXTERNAL activity: {self.external[signal.symbol]}",
                "engine",
            )
        elif self.feeds[signal.symbol].stale and signal.action is not SignalAction.CLOSE:
            decision = Decision(
                DecisionAction.HOLD, 0.0, f"market data for {signal.symbol} is stale", "engine"
            )
        else:
            snapshot = self.markets[signal.symbol].snapshot()
            frame = self.candles_frame(signal.symbol)
            decision = self._decide(signal, MarketContext(signal.symbol, price, frame, position, snapshot))
        equity = self.exchange.account().equity
        verdict = assess(decision, position, equity, price or 0.0, self.limits)
        client_id = self._commit_decision(signal_id, signal, decision, verdict)
        self.status.signals_processed += 1
        if client_id is not None:
            self.executor.submit(client_id, self.limits.leverage)
            if not verdict.reduce_only and (decision.stop_loss or decision.take_profit):
                self.brackets.attach(
                    client_id, decision.stop_loss, decision.take_profit, self.limits.leverage
                )

    def _decide(self, signal: Signal, context: MarketContext) -> Decision:
        try:
            return self.analyst.decide(signal, context)
        except BluefinAIError as exc:
            log_event(logger, "analyst_failed", logging.WARNING, analyst=self.analyst.name, error=str(exc))
            return Decision(DecisionAction.HOLD, 0.0, f"analyst {self.analyst.name} failed: {exc}", "engine")

    def _commit_decision(
        self, signal_id: int, signal: Signal, decision: Decision, verdict: RiskVerdict
    ) -> str | None:
        """Decision (+ its order, if approved) in one transaction. None if already decided or vetoed."""
        batch = self.journal.pending()
        try:
            with self.db.session() as session:
                row = DecisionRow(
                    signal_id=signal_id, analyst=decision.analyst, action=decision.action.value,
                    confidence=decision.confidence, rationale=decision.rationale, factors=decision.factors,
                    stop_loss=decision.stop_loss, take_profit=decision.take_profit,
                    risk_approved=verdict.approved, risk_reason=verdict.reason, quantity=verdict.quantity,
                )  # fmt: skip
                session.add(row)
                session.flush()
                order: OrderRow | None = None
                if verdict.approved and verdict.side is not None:
                    plan = PlannedOrder(
                        signal.symbol, verdict.side, verdict.quantity, verdict.reduce_only,
                        self.limits.leverage, f"signal {signal_id} ({signal.action.value})",
                    )  # fmt: skip
                    order = self.executor.pending_row(plan, signal_id, row.id)
                    session.add(order)
                    session.flush()
                signal_row = session.get(SignalRow, signal_id)
                assert signal_row is not None
                batch.record(session, "signal", signal_dict(signal_row, row))
                batch.record(session, "decision", decision_dict(row))
                client_id = order.client_id if order else None
        except IntegrityError:
            log_event(logger, "signal_already_decided", signal_id=signal_id)
            return None
        batch.flush()
        log_event(
            logger, "signal_decided", signal_id=signal_id, action=decision.action.value,
            approved=verdict.approved, reason=verdict.reason, quantity=verdict.quantity,
        )  # fmt: skip
        return client_id

    def _unresolved_order(self, symbol: str) -> str | None:
        """An order in this market whose placement outcome is unknown (PENDING_SUBMIT): until reconciliation
        settles it, a new entry could double the exposure."""
        with self.db.session() as session:
            return session.scalar(
                select(OrderRow.client_id).where(
                    OrderRow.symbol == symbol, OrderRow.status == OrderStatus.PENDING_SUBMIT.value
                )
            )

    def _position(self, symbol: str) -> Position:
        with self.db.session() as session:
            row = session.get(PositionRow, symbol)
            if row is None:
                return Position(symbol, 0.0, 0.0)
            return Position(symbol, row.quantity, row.entry_price, row.realized_pnl)

    def correlations(self, window: int = 240) -> dict[str, dict[str, float | None]]:
        """Correlation of 1m log returns across the traded symbols over their common candles (empty with
        fewer than two symbols; None where two symbols share too few candles)."""
        if len(self.history) < 2:
            return {}
        closes = {
            symbol: pd.Series(
                [c.close for c in candles], index=pd.DatetimeIndex([c.open_time for c in candles])
            )
            for symbol, candles in self.history.items()
        }
        matrix = correlation_matrix(closes, window)
        return {
            str(k): {str(i): None if pd.isna(v) else round(float(v), 4) for i, v in row.items()}
            for k, row in matrix.to_dict().items()
        }

    # status ------------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        account = self.exchange.account()
        return {
            "state": self.status.state,
            "reason": self.status.reason,
            "exchange": self.exchange.name,
            "analyst": self.analyst.name,
            "analyst_degraded": bool(getattr(self.analyst, "degraded", False)),
            "analyst_problem": getattr(self.analyst, "last_problem", "")
            if getattr(self.analyst, "degraded", False)
            else "",
            "feed": {s: f.source for s, f in self.feeds.items()},
            "stale": {s: f.stale for s, f in self.feeds.items()},
            "external": self.external,
            "prices": {s: self.exchange.mark_price(s) for s in self.feeds},
            "candles_seen": self.status.candles_seen,
            "signals_processed": self.status.signals_processed,
            "market_time": self.status.last_candle_time,
            "balance": account.balance,
            "equity": account.equity,
            "unrealized_pnl": account.unrealized_pnl,
            "fees_paid": account.fees_paid,
            "started_at": self.status.started_at,
        }

    def publish_status(self) -> None:
        self.journal.publish("status", self.snapshot())


def _signal_from_row(row: SignalRow) -> Signal:
    return Signal(
        idempotency_key=row.idempotency_key, source=row.source, symbol=row.symbol,
        action=SignalAction(row.action), price=row.price, timeframe=row.timeframe, strategy=row.strategy,
        confidence=row.confidence, stop_loss=row.stop_loss, take_profit=row.take_profit,
        alert_time=row.alert_time, raw=row.raw,
    )  # fmt: skip

"""Decisions on signals: each pending signal is decided once, analyst -> risk gate -> order.

A signal too old (SIGNAL_MAX_AGE_S) is expired; one in a market that is blocked (no data, an order of
unknown outcome, EXTERNAL activity, stale data) is held; any other is put to the analyst, then to the risk
gate on our books and the account; the decision and its order are committed together (PENDING_SUBMIT),
then the order is sent and the position protected at once.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from agent.analysis.base import Analyst, MarketContext
from agent.analysis.track_record import track_record
from agent.arena.arena import Arena
from agent.engine.answers import AnswersInFlight
from agent.execution.orders import PlannedOrder
from agent.journal.store import Conflict
from agent.risk.gate import RiskContext, RiskVerdict, assess
from agent.risk.sizing import TradeStats
from shared.db import DecisionRow, OrderRow, SignalRow
from shared.errors import BluefinAIError
from shared.logs import log_event
from shared.models import Decision, DecisionAction, OrderStatus, OrderType, Position, Signal, SignalAction
from shared.serialize import decision_dict, signal_dict

if TYPE_CHECKING:
    from agent.engine.engine import Engine

logger = logging.getLogger(__name__)
# the candles of a context that has a snapshot instead: one shared empty frame (framing even an empty one per
# decision cost as much as reading the books); nothing writes to a context's candles
NO_CANDLES = pd.DataFrame()
IN_FLIGHT = (OrderStatus.PENDING_SUBMIT.value, OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value)


@dataclass(frozen=True)
class OurBooks:
    """What a decision about one market reads of our books."""

    positions: dict[str, Position]  # every open position, and this market's even when flat (realised PnL)
    # an order in this market whose outcome is unknown (PENDING_SUBMIT, or a market order the exchange has
    # not reported filled yet): until it is settled, a new entry could double the exposure
    unresolved: str | None


class SignalDecisions:
    """Decides the engine's pending signals (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.waiting = True  # signals stored (by a source of ours or a nudge) since the last pass
        self._vetoed_sources: set[str] = set()  # sources whose Kelly veto was announced (once each)
        # the shadow books: the raw signal (follow) and AI_SHADOW_ANALYSTS decide every signal on paper
        self.arena = Arena(engine.db, engine.analyst.name)
        # an AI's answer kept until its decision is committed: a crash in between does not ask again
        self.answers = AnswersInFlight(engine.db)

    def process_pending_signals(self) -> int:
        engine = self.engine
        self.waiting = False
        with engine.store.transaction() as records:
            pending = records.pending_signals(100)
        for row in pending:
            self._process(row)
        if len(pending) == 100:
            self.waiting = True
        return len(pending)

    def process_signal(self, signal_id: int) -> None:
        """Decide one stored signal (nothing if it is unknown or already decided)."""
        engine = self.engine
        with engine.store.transaction() as records:
            row = records.signal(signal_id)
            if row is None or records.decided(signal_id):
                return
        self._process(row)

    def _process(self, row: SignalRow) -> None:
        """Analyst, risk gate, the decision and its order committed together, then the order placed and the
        position protected. ``row``: a pending signal as read (detached); a decision stored meanwhile by
        someone else makes the commit fail, and nothing is placed. A local analyst decides under the lock
        (milliseconds), on the same read of our books as the risk check; any other thinks outside it, and
        the books are read again under the lock."""
        engine = self.engine
        signal = _signal_from_row(row)
        symbol = signal.symbol
        expired = self._expiry(row)
        if expired:
            self._expire(row, signal, expired)
            if not engine.analyst.local:
                self.answers.drop(signal.idempotency_key)
            return
        local = engine.analyst.local
        with engine.lock if local else nullcontext():
            books = self.books(symbol)
            price = engine.exchange.mark_price(symbol)
            blocked = self.blocked(symbol, books.unresolved)
            if symbol not in engine.feeds or price is None:
                decision = Decision(DecisionAction.HOLD, 0.0, f"no market data for {symbol}", "engine")
            elif blocked and signal.action is not SignalAction.CLOSE:
                decision = Decision(DecisionAction.HOLD, 0.0, blocked, "engine")
            else:
                decision = self._decide(signal, self.market_context(symbol, price, books.positions))
            with engine.lock:  # the kill switch cannot slip between this check and the order
                if not local:
                    books = self.books(symbol)  # what changed while the analyst thought
                context = self._risk_context(symbol, price or 0.0, signal.source, books)
                verdict = assess(decision, signal, context, engine.policy)
                self._announce_veto(signal.source, verdict, context.stats)
                committed = self._commit_decision(row, signal, decision, verdict)
                if not local:
                    self.answers.drop(signal.idempotency_key)
                engine.status.signals_processed += 1
                if committed is not None:
                    order, decided = committed
                    leverage = verdict.details.get("leverage", engine.policy.order_leverage)
                    engine.executor.submit(order.client_id, leverage, committed=order)
                    if symbol in engine.views:
                        engine.manager.protect(symbol, engine.views[symbol], (order, decided, row))
        if price is not None and symbol in engine.feeds:  # outside the lock: a shadow LLM may think
            mark, positions = price, books.positions
            self.arena.decide(
                row.id, signal, decision, context, engine.policy,
                lambda analyst: self.market_context(symbol, mark, positions, analyst), engine.market_now(),
            )  # fmt: skip

    def _signal_now(self) -> datetime:
        """The "now" of a signal's age: the wall clock on live market data, else the market clock (a
        backtest, a replay)."""
        engine = self.engine
        if any(feed.source == "bluefin" for feed in engine.feeds.values()):
            return max(datetime.now(UTC), engine.market_now())
        return engine.market_now()

    def _expiry(self, row: SignalRow) -> str:
        """Why the signal is too old to trade (SIGNAL_MAX_AGE_S, from its alert's time, else from its
        arrival), or ""."""
        engine = self.engine
        born = row.alert_time or row.received_at
        if born is None:
            return ""
        if born.tzinfo is None:  # as SQLite gives it back: stored in UTC
            born = born.replace(tzinfo=UTC)
        age = (self._signal_now() - born).total_seconds()
        if age <= engine.signal_max_age_s:
            return ""
        since = "its alert's time" if row.alert_time is not None else "its arrival"
        limit = engine.signal_max_age_s
        return f"expired: {age:,.0f} s old at decision time (from {since}), SIGNAL_MAX_AGE_S is {limit:g}"

    def _expire(self, row: SignalRow, signal: Signal, reason: str) -> None:
        """Record the signal as expired (a decision of its own, never traded)."""
        engine = self.engine
        decision = Decision(DecisionAction.HOLD, 0.0, reason, "engine")
        verdict = RiskVerdict(False, reason, details={"rule": "expired"})
        with engine.lock:
            self._commit_decision(row, signal, decision, verdict, action="expired")
            engine.status.signals_processed += 1
        log_event(logger, "signal_expired", logging.WARNING, signal_id=row.id, source=signal.source,
                  reason=reason)  # fmt: skip

    def _announce_veto(self, source: str, verdict: RiskVerdict, stats: TradeStats) -> None:
        """A Kelly veto shuts a whole signal source out: said once per source, with its record."""
        if verdict.details.get("rule") != "kelly" or source in self._vetoed_sources:
            return
        self._vetoed_sources.add(source)
        log_event(
            logger, "source_vetoed", logging.WARNING, source=source, trades=stats.trades, wins=stats.wins,
            losses=stats.losses, average_win=round(stats.average_win, 6),
            average_loss=round(stats.average_loss, 6),
            reason=verdict.details.get("vetoed_by", verdict.reason),
        )  # fmt: skip

    def books(self, symbol: str) -> OurBooks:
        """Our books as a decision about ``symbol`` needs them, read together."""
        engine = self.engine
        with engine.store.transaction() as records:
            positions = {p.symbol: p for p in records.position_values(also=symbol)}
            unresolved = [
                client_id for client_id, status, kind in records.order_kinds(IN_FLIGHT, symbol)
                if status == OrderStatus.PENDING_SUBMIT.value or kind == OrderType.MARKET.value
            ]  # fmt: skip
        return OurBooks(positions, unresolved[0] if unresolved else None)

    def market_context(
        self, symbol: str, price: float, positions: dict[str, Position], analyst: Analyst | None = None
    ) -> MarketContext:
        """What the analyst (the engine's, or ``analyst`` of the arena) sees: the market across timeframes,
        the portfolio, the limits and (for AI analysts) its own track record."""
        engine = self.engine
        analyst = analyst or engine.analyst
        position = positions.get(symbol, Position(symbol, 0.0, 0.0))
        portfolio = tuple(p for p in positions.values() if p.quantity != 0)
        policy = engine.policy
        limits = {
            "trading_state": engine.guard.state, "max_position_size": policy.max_position_size,
            "risk_per_trade": policy.risk_per_trade, "max_leverage": policy.order_leverage,
            "min_confidence": policy.min_confidence, "min_reward_risk": policy.min_reward_risk,
            "stop_atr_multiple": policy.stop_atr_multiple, "max_open_positions": policy.max_open_positions,
        }  # fmt: skip
        record = track_record(engine.db, analyst.name) if analyst.wants_track_record else None
        snapshot = engine.markets[symbol].snapshot() if analyst.reads_market else None
        base = snapshot.base if snapshot is not None else None
        # the raw candles only where the snapshot cannot stand in for them (no base-candle indicators yet):
        # analysts read the snapshot first, and framing 300 candles costs more than the rest of a decision
        candles = (
            engine.candles_frame(symbol)
            if snapshot is not None and (base is None or not base.indicators)
            else NO_CANDLES
        )
        return MarketContext(
            symbol, price, candles, position, snapshot,
            portfolio=portfolio, limits=limits, track_record=record,
            candles_timeframe=engine.markets[symbol].base_timeframe,
        )  # fmt: skip

    def blocked(self, symbol: str, unknown: str | None) -> str:
        """Why new entries in this market are blocked right now ("" if they are not); ``unknown``: its
        order of unknown outcome, if any (``_books``)."""
        engine = self.engine
        if symbol not in engine.feeds:
            return f"no market data for {symbol}"
        if unknown:
            return f"the outcome of order {unknown} in {symbol} is not known yet"
        if symbol in engine.external:
            return f"{symbol} has EXTERNAL activity: {engine.external[symbol]}"
        if engine.feeds[symbol].stale:
            return f"market data for {symbol} is stale"
        return ""

    def _risk_context(self, symbol: str, price: float, source: str, books: OurBooks) -> RiskContext:
        """Our books (every position, read under the lock: ``_books``), the account and the market's facts."""
        engine = self.engine
        account = engine.exchange.account()
        positions, unresolved = books.positions, books.unresolved
        position = positions.get(symbol, Position(symbol, 0.0, 0.0))
        others = {
            p.symbol: p.quantity * (engine.exchange.mark_price(p.symbol) or p.entry_price)
            for p in positions.values()
            if p.symbol != symbol and p.quantity != 0
        }
        atr = (
            engine.markets[symbol].indicator(engine.policy.atr_timeframe, "atr")
            if symbol in engine.markets
            else None
        )
        spec = engine.exchange.market_spec(symbol)
        return RiskContext(
            symbol=symbol, price=price, position=position, equity=account.equity,
            free_collateral=account.free_collateral, other_notionals=others,
            correlation=engine.correlations() if others else {}, atr=atr if atr == atr else None,
            trading_state=engine.guard.state, state_reason=engine.guard.status.reason,
            blocked=self.blocked(symbol, unresolved),
            stats=engine.trade_stats(source), account_stats=engine.trade_stats(refresh=False),
            maintenance_ratio=spec.maintenance_margin_ratio, market_max_leverage=spec.max_leverage,
            step_size=float(spec.step_size), min_quantity=float(spec.min_quantity),
            taker_fee=spec.taker_fee, slippage_bps=engine.exchange.expected_slippage_bps(symbol),
            funding_rate=self._funding_rate(symbol), funding_interval_hours=engine.funding_interval_hours,
        )  # fmt: skip

    def _funding_rate(self, symbol: str) -> float | None:
        """The funding rate a new position in ``symbol`` expects: a simulated venue's (its funding series at
        the clock, or the rate it was given), else the feed's predicted next rate, else its latest."""
        engine = self.engine
        rate = engine.market_driver.expected_funding_rate(symbol)
        if rate is not None:
            return rate
        funding = engine.markets[symbol].funding if symbol in engine.markets else None
        if funding is None:
            return None
        return funding.predicted if funding.predicted is not None else funding.rate

    def _decide(self, signal: Signal, context: MarketContext) -> Decision:
        """The analyst's decision; a remote (AI) one is kept until committed, and a kept one reused."""
        engine = self.engine
        remote = not engine.analyst.local
        if remote and (kept := self.answers.kept(signal.idempotency_key)) is not None:
            log_event(logger, "answer_reused", signal=signal.idempotency_key, analyst=kept.analyst)
            return kept
        try:
            decision = engine.analyst.decide(signal, context)
        except BluefinAIError as exc:
            log_event(logger, "analyst_failed", logging.WARNING, analyst=engine.analyst.name, error=str(exc))
            return Decision(
                DecisionAction.HOLD, 0.0, f"analyst {engine.analyst.name} failed: {exc}", "engine"
            )
        if remote:
            self.answers.keep(signal.idempotency_key, decision)
        return decision

    def _commit_decision(
        self, signal_row: SignalRow, signal: Signal, decision: Decision, verdict: RiskVerdict,
        action: str | None = None,
    ) -> tuple[OrderRow, DecisionRow] | None:  # fmt: skip
        """Decision (+ its order, if approved) in one transaction; the committed order and decision, or None
        if the signal was already decided or the decision vetoed."""
        engine = self.engine
        signal_id = signal_row.id
        batch = engine.journal.pending()
        try:
            with engine.store.transaction() as records:
                row = DecisionRow(
                    signal_id=signal_id, analyst=decision.analyst, action=action or decision.action.value,
                    confidence=decision.confidence, rationale=decision.rationale, factors=decision.factors,
                    stop_loss=decision.stop_loss, take_profit=decision.take_profit,
                    risk_approved=verdict.approved, risk_reason=verdict.reason, quantity=verdict.quantity,
                    risk={**verdict.details, "stop": verdict.stop_price}, proposal=decision.proposal(),
                )  # fmt: skip
                records.add_decision(row)
                order: OrderRow | None = None
                if verdict.approved and verdict.side is not None:
                    plan = PlannedOrder(
                        signal.symbol, verdict.side, verdict.quantity, verdict.reduce_only,
                        engine.policy.order_leverage, f"signal {signal_id} ({signal.action.value})",
                        role="close" if verdict.reduce_only else "entry", exit_kind=verdict.exit_kind,
                    )  # fmt: skip
                    order = engine.executor.pending_row(plan, signal_id, row.id)
                    records.add_order(order)
                batch.record(records, "signal", signal_dict(signal_row, row))
                batch.record(records, "decision", decision_dict(row))
        except Conflict:
            log_event(logger, "signal_already_decided", signal_id=signal_id)
            return None
        batch.flush()
        log_event(
            logger, "signal_decided", signal_id=signal_id, action=decision.action.value,
            approved=verdict.approved, reason=verdict.reason, quantity=verdict.quantity,
        )  # fmt: skip
        return (order, row) if order is not None else None


def _signal_from_row(row: SignalRow) -> Signal:
    return Signal(
        idempotency_key=row.idempotency_key, source=row.source, symbol=row.symbol,
        action=SignalAction(row.action), price=row.price, timeframe=row.timeframe, strategy=row.strategy,
        confidence=row.confidence, stop_loss=row.stop_loss, take_profit=row.take_profit,
        alert_time=row.alert_time, raw=row.raw,
    )  # fmt: skip

"""The engine loop: market data -> signals -> analyst -> risk -> execution -> position management -> journal
-> events.

One thread owns the loop; the same per-candle step serves live trading, paper trading and backtests
(``agent.backtest.run`` drives it on a simulated clock). For each closed 1m candle of a market:
1. the market state folds it into every timeframe and the exchange sees the price (a simulated exchange
   fills, triggers and liquidates against it);
2. when the exchange reports a change, our books are reconciled with it (fills, stops, targets);
3. the position manager keeps stops and targets on the exchange and exits when a rule says so;
4. the trading guard checks the daily-loss and drawdown breakers;
5. the platform's own signals (INTERNAL_SIGNALS) and replayed alerts (SIGNALS_REPLAY_FILE) are stored.
Then every pending signal is decided once: analyst -> risk gate -> order (committed PENDING_SUBMIT with the
decision, then sent) -> protective orders at once. On start the engine warms up history and reconciles with
the exchange before any decision; ``nudge()`` wakes it when the webhook stores a signal.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from agent.analysis.base import Analyst, MarketContext
from agent.analysis.track_record import track_record
from agent.engine.market_driver import MarketDriver
from agent.engine.positions import EntryContext, MarketView, PositionManager
from agent.engine.signals import SignalSource
from agent.execution.algos import AlgoRunner
from agent.execution.funding import book_funding, book_simulated_funding
from agent.execution.orders import OrderExecutor, PlannedOrder
from agent.journal.events import Journal
from agent.journal.store import Conflict, DatabaseStore, Store
from agent.risk.gate import RiskContext, RiskVerdict, assess
from agent.risk.presets import RiskPolicy
from agent.risk.report import HeldPosition, risk_report
from agent.risk.sizing import TradeStats
from agent.risk.state import TradingGuard
from shared.db import Database, DecisionRow, OrderRow, SignalRow
from shared.errors import BluefinAIError, Temporary
from shared.exchange.base import Exchange
from shared.exchange.margin import liquidation_price
from shared.logs import log_event
from shared.market_structure import correlation_matrix
from shared.marketdata.feeds import MarketFeed, ReplayFeed
from shared.models import (
    Candle,
    Decision,
    DecisionAction,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Signal,
    SignalAction,
)
from shared.serialize import decision_dict, order_dict, signal_dict

logger = logging.getLogger(__name__)
HISTORY_CANDLES = 300
STATUS_EVERY_S = 2.0
RECONCILE_EVERY_S = 5.0
FUNDING_EVERY_S = 300.0  # funding settles hourly: the exchange's funding history is read this often
DRIFT_EVERY_S = 60.0  # our positions compared with the exchange's this often while trading
DEAD_MAN_SWITCH_MS = 60_000
EQUITY_SAMPLES = 60 * 24 * 30  # a month of minutes, for drawdown to date
IN_FLIGHT = (OrderStatus.PENDING_SUBMIT.value, OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value)


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


@dataclass(frozen=True)
class OurBooks:
    """What a decision about one market reads of our books."""

    positions: dict[str, Position]  # every open position, and this market's even when flat (realised PnL)
    # an order in this market whose outcome is unknown (PENDING_SUBMIT, or a market order the exchange has
    # not reported filled yet): until it is settled, a new entry could double the exposure
    unresolved: str | None


class Engine:
    def __init__(
        self,
        db: Database,
        exchange: Exchange,
        analyst: Analyst,
        feeds: list[MarketFeed],
        journal: Journal,
        policy: RiskPolicy,
        candle_interval_s: float,
        signal_sources: list[SignalSource] | None = None,
        funding_interval_hours: float = 1.0,
        store: Store | None = None,
        signal_max_age_s: float = 120.0,
    ) -> None:
        self.db = db
        self.store = store or DatabaseStore(db)  # our records: the database, or memory for a backtest
        self.exchange = exchange
        self.analyst = analyst
        self.feeds = {feed.symbol: feed for feed in feeds}
        self.journal = journal
        self.policy = policy
        self.executor = OrderExecutor(self.store, exchange, journal)
        self.guard = TradingGuard(self.store, policy)
        self.manager = PositionManager(
            self.store, self.executor, policy, self.entry_context, self.review, exchange.market_spec
        )
        self.algos = AlgoRunner(self.store, self.executor, exchange, policy.order_leverage)
        self.market_driver = MarketDriver(exchange)  # feeds a simulated exchange; a no-op for a real one
        self.signal_sources = signal_sources or []
        self.funding_interval_hours = funding_interval_hours
        self.signal_max_age_s = signal_max_age_s  # SIGNAL_MAX_AGE_S: older signals are expired, not traded
        self._vetoed_sources: set[str] = set()  # sources whose Kelly veto was announced (once each)
        self.candle_interval_s = candle_interval_s
        self.history: dict[str, deque[Candle]] = {s: deque(maxlen=HISTORY_CANDLES) for s in self.feeds}
        self._history_from: dict[str, ReplayFeed] = {}  # markets whose recent candles are read from the file
        self.markets = {s: feed.market_state() for s, feed in self.feeds.items()}
        # how often each replay started over (a new pass gets a new market state)
        self._passes = {s: feed.wrapped for s, feed in self.feeds.items()}
        self.views: dict[str, MarketView] = {}
        self.equity_samples: deque[float] = deque(maxlen=EQUITY_SAMPLES)
        self.last_equity = 0.0  # after the latest candle
        self.status = EngineStatus()
        self.external: dict[str, str] = {}  # market -> why it is blocked for new entries
        self._drift: dict[str, str] = {}  # markets whose position disagreed with the exchange last time
        self._drifted: set[str] = set()  # markets check_positions marked EXTERNAL (it releases them too)
        self.on_day_closed: Callable[[str], None] | None = None  # the daily report
        self.lock = threading.RLock()  # one writer of orders at a time: the loop, or the kill switch
        self._exchange_revision: int | None = None
        self._signals_waiting = True
        self._pnls: dict[str | None, list[float]] | None = None  # closed trades' pnl: all (None), by source
        self._pnls_seen = 0  # how many of the executor's closed trades are in _pnls
        self._stats: dict[str | None, TradeStats] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_pass_at = time.monotonic()  # when the loop last finished a pass (its heartbeat)
        exchange.set_listener(self._wake.set)  # an exchange that reports fills on its own wakes the loop

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
        self._signals_waiting = True
        self._wake.set()

    def loop_problem(self, stuck_after_s: float) -> str:
        """Why the engine loop is not doing its job ("" when it is): its thread died, or it has not
        finished a pass for ``stuck_after_s`` seconds. An engine that was never started has no problem."""
        if self._thread is None or self._stop.is_set():
            return ""
        if not self._thread.is_alive():
            return "engine thread is dead"
        silent = time.monotonic() - self.last_pass_at
        if silent > stuck_after_s:
            return f"engine loop stuck: no pass for {silent:.0f} s (limit {stuck_after_s:.0f} s)"
        return ""

    def _run(self) -> None:
        self.last_pass_at = time.monotonic()
        try:
            self.prepare()
        except BluefinAIError as exc:
            self._pause(f"start-up failed: {exc}")
        except Exception as exc:  # a bug in start-up: stay alive, paused, and retry like any other failure
            logger.exception("engine_prepare_crashed")
            self._pause(f"start-up failed: {type(exc).__name__}: {exc}")
        next_candle = time.monotonic() + self.candle_interval_s
        next_status = 0.0
        next_reconcile = time.monotonic() + RECONCILE_EVERY_S
        next_funding = 0.0
        next_drift = time.monotonic() + DRIFT_EVERY_S
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
                    self.fold_exchange_changes()
                    if now >= next_reconcile:
                        self.maintain_orders()
                        self._refresh_dead_man_switch()
                        if now >= next_funding:
                            book_funding(self.store, self.exchange, self.journal, datetime.now(UTC))
                            next_funding = now + FUNDING_EVERY_S
                        if now >= next_drift:
                            self.check_positions()
                            next_drift = now + DRIFT_EVERY_S
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
            self.last_pass_at = time.monotonic()
            self._wake.wait(max(0.0, min(next_candle, next_status) - time.monotonic()))
            self._wake.clear()

    # start-up ----------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Warm up history, reconcile with the exchange; trading starts only if all of that succeeds."""
        booked = self.market_driver.booked_until()
        for symbol, feed in self.feeds.items():
            if booked is not None and isinstance(feed, ReplayFeed):
                feed.resume_after(booked)  # a restart goes on after the market time already booked
            if self.market_driver.simulated:
                feed.follow_mark()  # a simulated exchange measures stops, liquidation and funding on the mark
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
            with self.lock:
                resolved = self.executor.reconcile_pending()
                self.external = self._find_external()
        except Temporary as exc:
            self._pause(f"reconciliation failed, retrying: {exc}")
            return
        for symbol, reason in self.external.items():
            log_event(logger, "external_activity", logging.ERROR, symbol=symbol, reason=reason, alert=True)
        self.status.state, self.status.reason = "running", ""
        with self.lock, self.store.transaction() as records:
            held = [r.symbol for r in records.positions() if r.quantity]
        with self.lock:
            self._protect(held)  # a fill found now (or before a crash): protected now, not at the next candle
        self.algos.running()  # whether any algo survived a restart
        self.last_equity = self.exchange.account().equity
        self.guard.update(self.market_now(), self.last_equity)  # the day's starting equity, from the start
        log_event(logger, "engine_running", reconciled_orders=resolved, external=sorted(self.external))

    def _refresh_dead_man_switch(self) -> None:
        """On Bluefin, push the cancel-on-disconnect timer forward: if this loop dies, open orders go."""
        try:
            self.exchange.refresh_cancel_on_disconnect(DEAD_MAN_SWITCH_MS)
        except Temporary as exc:
            log_event(logger, "dead_man_switch_refresh_failed", logging.WARNING, error=str(exc))

    def maintain_orders(self, only: set[str] | None = None, protect: bool = True) -> set[str]:
        """Fold in what happened to open orders (fills of entries, stops and targets) and step the algos;
        ``only``: the orders the exchange says changed (the others need no look-up). With ``protect``, every
        market whose books moved is protected at once (its stop and targets placed, or cancelled when it
        went flat), not at its next candle. Returns those markets."""
        with self.lock:
            before = dict(self.executor.revision)
            self._book_liquidations()
            self.executor.reconcile_pending(only)
            self.algos.step(self.market_now())
            moved = {s for s, r in self.executor.revision.items() if r != before.get(s)}
            if protect:
                self._protect(moved)
        return moved

    def _protect(self, symbols: Iterable[str]) -> None:
        for symbol in sorted(symbols):
            if symbol in self.views and symbol not in self.external:
                self.manager.protect(symbol, self.views[symbol])

    @property
    def exchange_in_sync(self) -> bool:
        """Has every change the exchange reported been folded into our books?"""
        return self.exchange.revision == self._exchange_revision

    def acknowledge_exchange(self) -> bool:
        """Take the exchange's new revision as seen when it brings nothing to fold in (our own orders'
        results, already applied): what the next candle's step would do, without stepping it. False when
        there is something (an order that changed on its own, a liquidation), left for that step."""
        if (
            not self.market_driver.simulated
            or self.exchange.changes_pending
            or (self.market_driver.liquidations_pending)
        ):
            return False
        self._exchange_revision = self.exchange.revision
        return True

    def _exchange_changed(self) -> bool:
        revision = self.exchange.revision
        if revision is None or revision == self._exchange_revision:
            return False
        self._exchange_revision = revision
        return True

    def fold_exchange_changes(self) -> set[str]:
        """What the exchange reported on its own since the last look (fills of entries, stops, targets,
        cancels), folded into our books at once, and every market whose books moved protected at once (its
        stop and targets placed, or cancelled when it went flat): not at the next candle. Returns those
        markets."""
        if not self._exchange_changed():
            return set()
        with self.lock:
            changed = self.exchange.drain_changed_orders()
            if changed is None or changed or self.market_driver.liquidations_pending:
                return self.maintain_orders(changed)
        return set()

    def _book_liquidations(self) -> None:
        """A simulated exchange's liquidations: recorded as our exit orders and booked like any fill."""
        for result in self.market_driver.drain_liquidations():
            with self.store.transaction() as records:
                records.add_order(
                    OrderRow(
                        client_id=result.client_id, symbol=result.symbol,
                        side=result.side.value if result.side else "?", order_type="MARKET",
                        quantity=result.quantity, reduce_only=True, status=OrderStatus.PENDING_SUBMIT.value,
                        role="exit", exit_kind="liquidation", reason=result.reason or "liquidated",
                    )
                )  # fmt: skip
            self.executor.apply_result(result)
            log_event(logger, "liquidated", logging.ERROR, symbol=result.symbol, alert=True)

    def market_now(self) -> datetime:
        """The market clock: the close time of the latest candle (wall time before the first one)."""
        return self.status.market_time or datetime.now(UTC)

    def _find_external(self) -> dict[str, str]:
        external: dict[str, str] = {}
        batch = self.journal.pending()
        # the exchange is read first (under the engine lock: no order of ours goes out meanwhile), so a read
        # that fails leaves nothing half-written
        open_orders, positions = self.exchange.open_orders(), self.exchange.positions()
        with self.store.transaction() as records:
            known = records.client_ids()
            for result in open_orders:
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
                records.add_order(row)
                records.flush()
                batch.record(records, "order", order_dict(row))
                external[symbol] = f"external open order {result.client_id}"
            theirs = {p.symbol: p.quantity for p in positions}
            ours = {r.symbol: r.quantity for r in records.positions()}
            for symbol in sorted(set(theirs) | set(ours)):
                if abs(ours.get(symbol, 0.0) - theirs.get(symbol, 0.0)) > 1e-9:
                    external[symbol] = (
                        f"position: ours {ours.get(symbol, 0.0)} vs exchange {theirs.get(symbol, 0.0)}"
                    )
        batch.flush()
        return external

    def check_positions(self) -> dict[str, str]:
        """Compare our positions with the exchange's while trading (a liquidation or deleveraging the
        exchange did on its own, a trade made by hand): a market that disagrees twice in a row, with
        nothing of ours in flight there, is marked EXTERNAL (no new entries; exits still go) and alerted;
        one that agrees again is released. Returns the markets that disagree now."""
        with self.lock:
            if not self.exchange_in_sync:
                return dict(self._drift)  # something reported is still being folded in: ask next time
            theirs = {p.symbol: p.quantity for p in self.exchange.positions()}
            with self.store.transaction() as records:
                ours = {r.symbol: r.quantity for r in records.positions()}
                in_flight = {
                    o.symbol for o in records.orders(IN_FLIGHT) if o.order_type == OrderType.MARKET.value
                }
            now = {
                symbol: f"position: ours {ours.get(symbol, 0.0)} vs exchange {theirs.get(symbol, 0.0)}"
                for symbol in sorted(set(theirs) | set(ours))
                if abs(ours.get(symbol, 0.0) - theirs.get(symbol, 0.0)) > 1e-9 and symbol not in in_flight
            }
            for symbol, reason in now.items():
                if symbol in self._drift and symbol not in self.external:
                    self.external[symbol] = reason
                    self._drifted.add(symbol)
                    log_event(
                        logger, "position_drift", logging.ERROR, symbol=symbol, reason=reason, alert=True
                    )
            for symbol in self._drifted - set(now):
                self.external.pop(symbol, None)
                self._drifted.discard(symbol)
                log_event(logger, "position_drift_resolved", symbol=symbol)
            self._drift = now
        return now

    def _pause(self, reason: str) -> None:
        self.status.state, self.status.reason = "paused", reason
        log_event(logger, "trading_paused", logging.ERROR, reason=reason)

    # market data -------------------------------------------------------------------------------------
    def _take_candle(self, candle: Candle) -> MarketView:
        """Fold a closed candle (of the feed's interval) into the market state and the exchange; returns the
        market's view."""
        market = self.markets[candle.symbol]
        feed = self.feeds[candle.symbol]
        if feed.wrapped != self._passes[candle.symbol]:  # the replay started over, later on the clock
            self._passes[candle.symbol] = feed.wrapped
            log_event(logger, "replay_restarted", symbol=candle.symbol, at=candle.open_time.isoformat())
            self.markets[candle.symbol] = market = feed.market_state()
            self.history[candle.symbol].clear()
        closed = {built.candle.timeframe: built.candle for built in market.add_candle(candle)}
        if candle.symbol not in self._history_from:
            self.history[candle.symbol].append(candle)
        close_time = candle.open_time + timedelta(seconds=feed.interval_s)
        if self.market_driver.simulated:  # a simulated exchange follows the market through the candles
            self.market_driver.on_candle(candle, close_time, feed.mark_candle(candle.open_time))
        self.status.market_time = close_time
        return self.set_view(candle.symbol, close_time, candle, closed)

    def set_view(self, symbol: str, now: datetime, candle: Candle, closed: dict[str, Candle]) -> MarketView:
        """The market's view as of its latest candle (closing at ``now``, with the higher timeframes that
        closed with it): the one place a ``MarketView`` is built."""
        market = self.markets[symbol]
        atr = market.indicator(self.policy.atr_timeframe, "atr")
        view = MarketView(
            now,
            candle,
            closed,
            atr if atr == atr else None,
            market.funding,
            self.funding_interval_hours,
            market.levels_timeframe,
        )
        self.views[symbol] = view
        return view

    def absorb_skipped_market(self, feed: ReplayFeed, last: Candle, high: float, low: float) -> None:
        """A run of quiet candles of one market, ending with ``last``, went by in one go (a backtest's
        fast-forward, ``agent.backtest.fast_forward``; the market state has moved its cursor already): the
        exchange's mark and clock, the position plan's best price (``high``/``low`` of the run), the
        market clock and the market's view move to its end."""
        symbol = feed.symbol
        now = last.open_time + timedelta(seconds=feed.interval_s)
        self.read_history_from(feed)
        self.market_driver.advance(symbol, last.close, now)
        self.manager.skip(symbol, high, low)
        self.status.market_time = now
        self.set_view(symbol, now, last, {})

    def absorb_skipped_equity(self, samples: np.ndarray) -> None:
        """The equity after each skipped candle (of every market): the breakers' peak, the equity samples
        of the risk report, the latest equity and the candles seen."""
        self.guard.absorb(samples)
        self.equity_samples.extend(samples.tolist())
        self.last_equity = float(samples[-1])
        self.status.candles_seen += len(samples)

    def step_market(self) -> None:
        for symbol, feed in self.feeds.items():
            for candle in feed.poll():
                self.on_candle(feed, candle)
            market = self.markets[symbol]
            market.stale = feed.stale
            market.book, market.funding = feed.derivatives()
            if market.funding is not None:
                self.market_driver.on_funding(market.funding)

    def on_candle(self, feed: MarketFeed, candle: Candle) -> None:
        """Everything one closed candle sets off (see the module docstring)."""
        view = self._take_candle(candle)
        self.status.candles_seen += 1
        symbol = candle.symbol
        market = self.markets[symbol]
        if self.status.state == "running":
            with self.lock:
                if self.market_driver.funding_pending:  # settled before this candle's fills
                    book_simulated_funding(self.store, self.exchange, self.journal)
                if self._exchange_changed():
                    changed = self.exchange.drain_changed_orders()
                    if changed is None or changed or self.market_driver.liquidations_pending:
                        self.maintain_orders(changed, protect=False)  # this candle's step does it
                self.manager.on_candle(symbol, view)
                self._check_breakers(view.now)
            for source in self.signal_sources:
                if source.on_candle(symbol, view, market):
                    self._signals_waiting = True
        if self.journal.active:
            self.journal.publish(
                "market",
                {"symbol": symbol, "price": candle.close, "time": self.status.last_candle_time,
                 "source": feed.source, "stale": feed.stale},
            )  # fmt: skip

    def _check_breakers(self, now: datetime) -> None:
        account = self.exchange.account()
        self.last_equity = account.equity
        self.equity_samples.append(account.equity)
        previous_day = self.guard.status.day
        if self.guard.update(now, account.equity):
            self.publish_status()
        if previous_day is not None and self.guard.status.day != previous_day and self.on_day_closed:
            self.store.persist()  # the report reads the database
            self.on_day_closed(previous_day)

    def read_history_from(self, feed: ReplayFeed) -> None:
        """From now on the market's recent candles are read from the replayed file when needed, not kept
        candle by candle (a backtest that skips quiet candles)."""
        self._history_from[feed.symbol] = feed

    def recent_candles(self, symbol: str) -> Sequence[Candle]:
        """The last HISTORY_CANDLES closed 1m candles of a market."""
        feed = self._history_from.get(symbol)
        if feed is not None:
            return feed.candles(max(0, feed.cursor - HISTORY_CANDLES), feed.cursor)
        return self.history[symbol]

    def candles_frame(self, symbol: str) -> pd.DataFrame:
        candles = self.recent_candles(symbol)
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

    def entry_context(self, symbol: str) -> EntryContext:
        """The regime (1h trend, else 15m) and the 15m levels (when LEVEL_BREAK_EXIT uses them), for a new
        position's plan."""
        market = self.markets[symbol]
        regime = market.trend("1h")
        if regime in ("unknown", ""):
            regime = market.trend("15m" if "15m" in market.timeframes else market.base_timeframe)
        levels = market.levels() if self.policy.level_break_exit else []
        return EntryContext(
            regime,
            tuple(lv.price for lv in levels if lv.kind == "support"),
            tuple(lv.price for lv in levels if lv.kind == "resistance"),
        )

    def review(self, symbol: str, side: Side) -> str | None:
        """The analyst's risk view of a held position (the rules analyst's: deterministic and free)."""
        reviewer = getattr(self.analyst, "review", None)
        market = self.markets[symbol]
        return reviewer(side, market, market.levels_timeframe) if reviewer is not None else None

    # signals -----------------------------------------------------------------------------------------
    @property
    def signals_waiting(self) -> bool:
        """Were signals stored (by a source of ours or a nudge) since the last pass? A backtest only looks
        for pending signals then; the live loop looks every time (the webhook writes them)."""
        return self._signals_waiting

    def process_pending_signals(self) -> int:
        self._signals_waiting = False
        with self.store.transaction() as records:
            pending = records.pending_signals(100)
        for row in pending:
            self._process(row)
        if len(pending) == 100:
            self._signals_waiting = True
        return len(pending)

    def process_signal(self, signal_id: int) -> None:
        """Decide one stored signal (nothing if it is unknown or already decided)."""
        with self.store.transaction() as records:
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
        signal = _signal_from_row(row)
        symbol = signal.symbol
        expired = self._expiry(row)
        if expired:
            self._expire(row, signal, expired)
            return
        local = self.analyst.local
        with self.lock if local else nullcontext():
            books = self._books(symbol)
            price = self.exchange.mark_price(symbol)
            blocked = self._blocked(symbol, books.unresolved)
            if symbol not in self.feeds or price is None:
                decision = Decision(DecisionAction.HOLD, 0.0, f"no market data for {symbol}", "engine")
            elif blocked and signal.action is not SignalAction.CLOSE:
                decision = Decision(DecisionAction.HOLD, 0.0, blocked, "engine")
            else:
                decision = self._decide(signal, self._market_context(symbol, price, books.positions))
            with self.lock:  # the kill switch cannot slip between this check and the order
                if not local:
                    books = self._books(symbol)  # what changed while the analyst thought
                context = self._risk_context(symbol, price or 0.0, signal.source, books)
                verdict = assess(decision, signal, context, self.policy)
                self._announce_veto(signal.source, verdict, context.stats)
                committed = self._commit_decision(row, signal, decision, verdict)
                self.status.signals_processed += 1
                if committed is not None:
                    order, decided = committed
                    leverage = verdict.details.get("leverage", self.policy.order_leverage)
                    self.executor.submit(order.client_id, leverage, committed=order)
                    if symbol in self.views:
                        self.manager.protect(symbol, self.views[symbol], (order, decided, row))

    def _signal_now(self) -> datetime:
        """The "now" of a signal's age: the wall clock on live market data, else the market clock (a
        backtest, a replay)."""
        if any(feed.source == "bluefin" for feed in self.feeds.values()):
            return max(datetime.now(UTC), self.market_now())
        return self.market_now()

    def _expiry(self, row: SignalRow) -> str:
        """Why the signal is too old to trade (SIGNAL_MAX_AGE_S, from its alert's time, else from its
        arrival), or ""."""
        born = row.alert_time or row.received_at
        if born is None:
            return ""
        if born.tzinfo is None:  # as SQLite gives it back: stored in UTC
            born = born.replace(tzinfo=UTC)
        age = (self._signal_now() - born).total_seconds()
        if age <= self.signal_max_age_s:
            return ""
        since = "its alert's time" if row.alert_time is not None else "its arrival"
        limit = self.signal_max_age_s
        return f"expired: {age:,.0f} s old at decision time (from {since}), SIGNAL_MAX_AGE_S is {limit:g}"

    def _expire(self, row: SignalRow, signal: Signal, reason: str) -> None:
        """Record the signal as expired (a decision of its own, never traded)."""
        decision = Decision(DecisionAction.HOLD, 0.0, reason, "engine")
        verdict = RiskVerdict(False, reason, details={"rule": "expired"})
        with self.lock:
            self._commit_decision(row, signal, decision, verdict, action="expired")
            self.status.signals_processed += 1
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

    def _books(self, symbol: str) -> OurBooks:
        """Our books as a decision about ``symbol`` needs them, read together."""
        with self.store.transaction() as records:
            positions = {
                r.symbol: Position(r.symbol, r.quantity, r.entry_price, r.realized_pnl)
                for r in records.positions(also=symbol)
            }
            unresolved = [
                o for o in records.orders(IN_FLIGHT, symbol)
                if o.status == OrderStatus.PENDING_SUBMIT.value or o.order_type == OrderType.MARKET.value
            ]  # fmt: skip
        return OurBooks(positions, unresolved[0].client_id if unresolved else None)

    def _market_context(self, symbol: str, price: float, positions: dict[str, Position]) -> MarketContext:
        """What the analyst sees: the market across timeframes, the portfolio, the limits and (for AI
        analysts) its own track record."""
        position = positions.get(symbol, Position(symbol, 0.0, 0.0))
        portfolio = tuple(p for p in positions.values() if p.quantity != 0)
        policy = self.policy
        limits = {
            "trading_state": self.guard.state, "max_position_size": policy.max_position_size,
            "risk_per_trade": policy.risk_per_trade, "max_leverage": policy.order_leverage,
            "min_confidence": policy.min_confidence, "min_reward_risk": policy.min_reward_risk,
            "stop_atr_multiple": policy.stop_atr_multiple, "max_open_positions": policy.max_open_positions,
        }  # fmt: skip
        record = track_record(self.db, self.analyst.name) if self.analyst.wants_track_record else None
        snapshot = self.markets[symbol].snapshot() if self.analyst.reads_market else None
        base = snapshot.base if snapshot is not None else None
        # the raw candles only where the snapshot cannot stand in for them (no base-candle indicators yet):
        # analysts read the snapshot first, and framing 300 candles costs more than the rest of a decision
        candles = (
            self.candles_frame(symbol)
            if snapshot is not None and (base is None or not base.indicators)
            else pd.DataFrame()
        )
        return MarketContext(
            symbol, price, candles, position, snapshot,
            portfolio=portfolio, limits=limits, track_record=record,
            candles_timeframe=self.markets[symbol].base_timeframe,
        )  # fmt: skip

    def _blocked(self, symbol: str, unknown: str | None) -> str:
        """Why new entries in this market are blocked right now ("" if they are not); ``unknown``: its
        order of unknown outcome, if any (``_books``)."""
        if symbol not in self.feeds:
            return f"no market data for {symbol}"
        if unknown:
            return f"the outcome of order {unknown} in {symbol} is not known yet"
        if symbol in self.external:
            return f"{symbol} has EXTERNAL activity: {self.external[symbol]}"
        if self.feeds[symbol].stale:
            return f"market data for {symbol} is stale"
        return ""

    def _risk_context(self, symbol: str, price: float, source: str, books: OurBooks) -> RiskContext:
        """Our books (every position, read under the lock: ``_books``), the account and the market's facts."""
        account = self.exchange.account()
        positions, unresolved = books.positions, books.unresolved
        position = positions.get(symbol, Position(symbol, 0.0, 0.0))
        others = {
            p.symbol: p.quantity * (self.exchange.mark_price(p.symbol) or p.entry_price)
            for p in positions.values()
            if p.symbol != symbol and p.quantity != 0
        }
        atr = (
            self.markets[symbol].indicator(self.policy.atr_timeframe, "atr")
            if symbol in self.markets
            else None
        )
        spec = self.exchange.market_spec(symbol)
        return RiskContext(
            symbol=symbol, price=price, position=position, equity=account.equity,
            free_collateral=account.free_collateral, other_notionals=others,
            correlation=self.correlations() if others else {}, atr=atr if atr == atr else None,
            trading_state=self.guard.state, state_reason=self.guard.status.reason,
            blocked=self._blocked(symbol, unresolved),
            stats=self.trade_stats(source), account_stats=self.trade_stats(refresh=False),
            maintenance_ratio=spec.maintenance_margin_ratio, market_max_leverage=spec.max_leverage,
            step_size=float(spec.step_size), min_quantity=float(spec.min_quantity),
            taker_fee=spec.taker_fee, slippage_bps=self.exchange.expected_slippage_bps(symbol),
        )  # fmt: skip

    def trade_stats(self, source: str | None = None, refresh: bool = True) -> TradeStats:
        """Win rate, payoff and streaks of the journal's closed trades, of one signal source or of all. The
        journal is read once; after that the trades this engine books are added as they close (it is their
        only writer). ``refresh=False``: as last computed."""
        if self._pnls is None:
            with self.store.transaction() as records:
                rows = records.trade_pnls()
            self._pnls = {None: []}
            self._add_trades(rows)
            self._pnls_seen = len(self.executor.closed_trades)
        elif refresh and self._pnls_seen < len(self.executor.closed_trades):
            self._add_trades(self.executor.closed_trades[self._pnls_seen :])
            self._pnls_seen = len(self.executor.closed_trades)
        return self._stats.get(source, TradeStats())

    def _add_trades(self, trades: Sequence[tuple[str, float]]) -> None:
        assert self._pnls is not None
        for name, pnl in trades:
            self._pnls[None].append(pnl)
            self._pnls.setdefault(name, []).append(pnl)
        for source in {None, *(name for name, _ in trades)}:
            self._stats[source] = TradeStats.from_pnls(self._pnls[source])

    def _decide(self, signal: Signal, context: MarketContext) -> Decision:
        try:
            return self.analyst.decide(signal, context)
        except BluefinAIError as exc:
            log_event(logger, "analyst_failed", logging.WARNING, analyst=self.analyst.name, error=str(exc))
            return Decision(DecisionAction.HOLD, 0.0, f"analyst {self.analyst.name} failed: {exc}", "engine")

    def _commit_decision(
        self, signal_row: SignalRow, signal: Signal, decision: Decision, verdict: RiskVerdict,
        action: str | None = None,
    ) -> tuple[OrderRow, DecisionRow] | None:  # fmt: skip
        """Decision (+ its order, if approved) in one transaction; the committed order and decision, or None
        if the signal was already decided or the decision vetoed."""
        signal_id = signal_row.id
        batch = self.journal.pending()
        try:
            with self.store.transaction() as records:
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
                        self.policy.order_leverage, f"signal {signal_id} ({signal.action.value})",
                        role="close" if verdict.reduce_only else "entry", exit_kind=verdict.exit_kind,
                    )  # fmt: skip
                    order = self.executor.pending_row(plan, signal_id, row.id)
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

    def correlations(self, window: int = 240) -> dict[str, dict[str, float | None]]:
        """Correlation of 1m log returns across the traded symbols over their common candles (empty with
        fewer than two symbols; None where two symbols share too few candles)."""
        if len(self.history) < 2:
            return {}
        closes = {
            symbol: pd.Series(
                [c.close for c in candles], index=pd.DatetimeIndex([c.open_time for c in candles])
            )
            for symbol, candles in ((s, self.recent_candles(s)) for s in self.history)
        }
        matrix = correlation_matrix(closes, window)
        return {
            str(k): {str(i): None if pd.isna(v) else round(float(v), 4) for i, v in row.items()}
            for k, row in matrix.to_dict().items()
        }

    def risk_report(self) -> dict[str, Any]:
        """Trading state, limits and portfolio risk metrics (``agent.risk.report``)."""
        account = self.exchange.account()
        listed = self.exchange.exchange_positions()
        liquidations = {p.position.symbol: p.liquidation_price for p in listed}
        held = []
        with self.store.transaction() as records:
            rows = records.positions()
        for row in rows:
            market = self.markets.get(row.symbol)
            atr = market.indicator(self.policy.atr_timeframe, "atr") if market else math.nan
            liquidation = liquidations.get(row.symbol) or liquidation_price(
                row.entry_price,
                row.quantity,
                abs(row.quantity) * row.entry_price / self.policy.order_leverage,
                self.exchange.market_spec(row.symbol).maintenance_margin_ratio,
            )
            mark = self.exchange.mark_price(row.symbol) or row.entry_price
            held.append(
                HeldPosition(
                    row.symbol, row.quantity, row.entry_price, mark, liquidation, atr if atr == atr else None,
                    market.funding.rate if market and market.funding else None,
                )
            )  # fmt: skip
        returns = pd.DataFrame({s: m.closes("1h") for s, m in self.markets.items()}).pct_change(
            fill_method=None
        )
        return risk_report(
            held, returns, account.equity, list(self.equity_samples), self.guard.status.peak_equity,
            self.correlations() if len(held) > 1 else {}, self.policy, self.guard.view(account.equity),
            self.funding_interval_hours,
        )  # fmt: skip

    # control -----------------------------------------------------------------------------------------
    def kill(self, reason: str, close_positions: bool) -> dict[str, Any]:
        """The kill switch: HALTED first (persisted, so no new order can follow), then cancel every working
        order that does not protect a position we keep, stop the algos, and optionally close every
        position."""
        self.guard.kill(self.market_now(), reason)
        cancelled: list[str] = []
        with self.lock:
            for algo_id in self.algos.running():
                self.algos.cancel(algo_id, "kill switch")
            with self.store.transaction() as records:
                working = records.orders((OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value))
                targets = [o.client_id for o in working if close_positions or not o.reduce_only]
            for client_id in targets:
                self.executor.cancel(client_id)
                cancelled.append(client_id)
            closed = self.manager.close_all("kill_switch", reason or "kill switch") if close_positions else 0
        self.publish_status()
        log_event(
            logger, "kill_switch", logging.ERROR, reason=reason, cancelled=len(cancelled), closed=closed,
            alert=True,
        )  # fmt: skip
        return {"state": self.guard.state, "cancelled_orders": cancelled, "closed_positions": closed}

    def set_trading_state(self, state: str, reason: str) -> dict[str, Any]:
        self.guard.set_manual(state, self.market_now(), self.exchange.account().equity, reason)  # type: ignore[arg-type]
        self.publish_status()
        return self.guard.view()

    # status ------------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        account = self.exchange.account()
        return {
            "state": self.status.state,
            "reason": self.status.reason,
            "trading_state": self.guard.view(account.equity),
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
        if self.journal.active:
            self.journal.publish("status", self.snapshot())
            self.journal.publish("risk", self.risk_report())


def _signal_from_row(row: SignalRow) -> Signal:
    return Signal(
        idempotency_key=row.idempotency_key, source=row.source, symbol=row.symbol,
        action=SignalAction(row.action), price=row.price, timeframe=row.timeframe, strategy=row.strategy,
        confidence=row.confidence, stop_loss=row.stop_loss, take_profit=row.take_profit,
        alert_time=row.alert_time, raw=row.raw,
    )  # fmt: skip

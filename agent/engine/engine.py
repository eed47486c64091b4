"""The engine: market data -> signals -> analyst -> risk -> execution -> position management -> journal
-> events.

``Engine`` owns the market data and the per-candle step and composes the parts that do the rest:
``loop`` (the thread's passes and what each failure makes it do), ``reconcile`` (our books against the
exchange's), ``decisions`` (each pending signal decided once), ``stats`` (closed trades' statistics,
correlations), ``status`` (the status and risk report) and ``market_driver`` (feeds a simulated exchange).

The same per-candle step serves live trading, paper trading and backtests (``agent.backtest.run`` drives
it on a simulated clock). For each closed 1m candle of a market:
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
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from agent.analysis.base import Analyst, MarketContext
from agent.engine.decisions import OurBooks, SignalDecisions
from agent.engine.loop import EngineLoop
from agent.engine.market_driver import MarketDriver
from agent.engine.positions import EntryContext, MarketView, PositionManager
from agent.engine.reconcile import Reconciler
from agent.engine.reviews import PositionReviews
from agent.engine.signals import SignalSource
from agent.engine.stats import TradeRecord, correlations
from agent.engine.status import EngineStatus, engine_risk_report, engine_snapshot
from agent.execution.algos import AlgoRunner
from agent.execution.funding import book_simulated_funding
from agent.execution.orders import OrderExecutor
from agent.journal.events import Journal
from agent.journal.store import DatabaseStore, Store
from agent.risk.presets import RiskPolicy
from agent.risk.sizing import TradeStats
from agent.risk.state import TradingGuard
from shared.db import Database
from shared.exchange.base import Exchange
from shared.logs import log_event
from shared.marketdata.feeds import MarketFeed, ReplayFeed
from shared.models import (
    Candle,
    Position,
    Side,
)

logger = logging.getLogger(__name__)
HISTORY_CANDLES = 300
EQUITY_SAMPLES = 60 * 24 * 30  # a month of minutes, for drawdown to date


class Engine:
    """The facade over the engine's parts: the loop (``agent.engine.loop``), reconciliation
    (``reconcile``), decisions on signals (``decisions``), trade statistics (``stats``) and the status and
    risk report (``status``); it owns the market data and the per-candle step itself."""

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
        self.algos = AlgoRunner.for_engine(self)  # every slice through the risk gate of slices
        self.market_driver = MarketDriver(exchange)  # feeds a simulated exchange; a no-op for a real one
        self.signal_sources = signal_sources or []
        self.funding_interval_hours = funding_interval_hours
        self.signal_max_age_s = signal_max_age_s  # SIGNAL_MAX_AGE_S: older signals are expired, not traded
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
        self.on_day_closed: Callable[[str], None] | None = None  # the daily report
        self.lock = threading.RLock()  # one writer of orders at a time: the loop, or the kill switch
        self.reconciler = Reconciler(self)
        self.decisions = SignalDecisions(self)
        self.reviews = PositionReviews(self)  # AI position reviews (an AI analyst's, on triggers)
        self.trades = TradeRecord(self.store, self.executor)
        self.loop = EngineLoop(self)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_pass_at = time.monotonic()  # when the loop last finished a pass (its heartbeat)
        exchange.set_listener(self._wake.set)  # an exchange that reports fills on its own wakes the loop

    # lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._thread.start()

    @property
    def thread_id(self) -> int | None:
        """The loop thread's native id (None before it started)."""
        return self._thread.native_id if self._thread is not None else None

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.status.state = "stopped"

    def nudge(self) -> None:
        self.decisions.waiting = True
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """Has ``stop`` been called (the loop ends after its pass)?"""
        return self._stop.is_set()

    def wait(self, timeout_s: float) -> None:
        """The loop's rest between passes: until ``timeout_s`` or a wake-up (a nudge, an exchange report)."""
        self._wake.wait(timeout_s)
        self._wake.clear()

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
        self.loop.run()

    def pause(self, reason: str) -> None:
        """Stop trading until reconciliation succeeds again (the loop retries it); the status says why."""
        self.status.state, self.status.reason = "paused", reason
        log_event(logger, "trading_paused", logging.ERROR, reason=reason)

    def halt(self, reason: str) -> None:
        """A fatal error: trading HALTED (no new exposure until a human resets it), a human alerted; the
        loop goes on serving status and reconciliation."""
        self.guard.halt(self.market_now(), "fatal", reason)
        log_event(logger, "engine_fatal", logging.ERROR, reason=reason, alert=True)
        self.publish_status()

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
        self.reviews.announce()
        self.reconcile()

    # reconciliation (``agent.engine.reconcile``) -----------------------------------------------------
    @property
    def external(self) -> dict[str, str]:
        """Markets blocked for new entries by activity we did not make, and why."""
        return self.reconciler.external

    def reconcile(self) -> None:
        self.reconciler.reconcile()

    def refresh_dead_man_switch(self) -> None:
        self.reconciler.refresh_dead_man_switch()

    def maintain_orders(self, only: set[str] | None = None, protect: bool = True) -> set[str]:
        return self.reconciler.maintain_orders(only, protect)

    def fold_exchange_changes(self) -> set[str]:
        return self.reconciler.fold_exchange_changes()

    def check_positions(self) -> dict[str, str]:
        return self.reconciler.check_positions()

    @property
    def exchange_in_sync(self) -> bool:
        return self.reconciler.exchange_in_sync

    def acknowledge_exchange(self) -> bool:
        return self.reconciler.acknowledge_exchange()

    def market_now(self) -> datetime:
        """The market clock: the close time of the latest candle (wall time before the first one)."""
        return self.status.market_time or datetime.now(UTC)

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
        self.decisions.arena.catch_up(feed)  # shadow books: the skipped candles' stops and targets
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
        self.decisions.arena.on_candle(candle, view.now)  # shadow books: paper stops and targets
        self.status.candles_seen += 1
        symbol = candle.symbol
        market = self.markets[symbol]
        if self.status.state == "running":
            with self.lock:
                if self.market_driver.funding_pending:  # settled before this candle's fills
                    book_simulated_funding(self.store, self.exchange, self.journal)
                if self.reconciler.exchange_changed():
                    changed = self.exchange.drain_changed_orders()
                    if changed is None or changed or self.market_driver.liquidations_pending:
                        self.maintain_orders(changed, protect=False)  # this candle's step does it
                self.manager.on_candle(symbol, view)
                self._check_breakers(view.now)
            self.reviews.on_candle(symbol, view)  # an AI review thinks outside the lock
            for source in self.signal_sources:
                if source.on_candle(symbol, view, market):
                    self.decisions.waiting = True
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
        levels = market.levels() if self.policy.level_break_exit else []
        return EntryContext(
            self.regime(symbol),
            tuple(lv.price for lv in levels if lv.kind == "support"),
            tuple(lv.price for lv in levels if lv.kind == "resistance"),
        )

    def regime(self, symbol: str) -> str:
        """The market's regime label: its 1h trend, else its 15m (or base) trend."""
        market = self.markets[symbol]
        regime = market.trend("1h")
        if regime in ("unknown", ""):
            regime = market.trend(self.regime_timeframe(symbol))
        return regime

    def regime_timeframe(self, symbol: str) -> str:
        """The fallback timeframe of ``regime`` (15m, or the base when coarser)."""
        market = self.markets[symbol]
        return "15m" if "15m" in market.timeframes else market.base_timeframe

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
        return self.decisions.waiting

    def process_pending_signals(self) -> int:
        return self.decisions.process_pending_signals()

    def process_signal(self, signal_id: int) -> None:
        self.decisions.process_signal(signal_id)

    def _books(self, symbol: str) -> OurBooks:
        return self.decisions.books(symbol)

    def _blocked(self, symbol: str, unknown: str | None) -> str:
        return self.decisions.blocked(symbol, unknown)

    def _market_context(self, symbol: str, price: float, positions: dict[str, Position]) -> MarketContext:
        return self.decisions.market_context(symbol, price, positions)

    def correlations(self, window: int = 240) -> dict[str, dict[str, float | None]]:
        """Correlation of the traded markets' 1m returns (``agent.engine.stats.correlations``)."""
        return correlations({s: self.recent_candles(s) for s in self.history}, window)

    def trade_stats(self, source: str | None = None, refresh: bool = True) -> TradeStats:
        """The closed trades' statistics, of one signal source or of all (``agent.engine.stats``)."""
        return self.trades.trade_stats(source, refresh)

    # control -----------------------------------------------------------------------------------------
    def set_trading_state(self, state: str, reason: str) -> dict[str, Any]:
        self.guard.set_manual(state, self.market_now(), self.exchange.account().equity, reason)  # type: ignore[arg-type]
        self.publish_status()
        return self.guard.view()

    # status (``agent.engine.status``) --------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return engine_snapshot(self)

    def risk_report(self) -> dict[str, Any]:
        return engine_risk_report(self)

    def publish_status(self) -> None:
        if self.journal.active:
            self.journal.publish("status", self.snapshot())
            self.journal.publish("risk", self.risk_report())

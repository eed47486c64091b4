"""``bluefinai backtest``: the real engine over history, on a simulated clock.

The same analyst, risk gate, execution and position management as live, built by the same functions
(``agent.wiring``), run over ``ReplayFeed`` candles with the ``PaperExchange`` (its books in memory: a
backtest has nothing to recover after a restart; the journal is the usual one): candles of every market are
fed in time order through ``Engine.on_candle`` (the per-candle step the live loop uses), and the signals they
set off are decided at once, exactly as the live loop does after each candle. Signals come from a file of
historical alerts (``--signals``), from the platform's own analysis (``--strategy``), or both.

Deterministic: the same data, settings and signals give byte-identical reports (no wall clock, no random
ids in the output). An LLM analyst runs only from recorded answers (AI_CACHE=replay) unless
``allow_live_ai`` says otherwise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from agent.analysis.factory import build_analyst
from agent.analytics.live import trade_records
from agent.analytics.performance import PerformanceMetrics, TradeRecord, compute_metrics
from agent.analytics.vetoes import veto_summary
from agent.arena.build import LOCAL, add_shadow_analysts
from agent.arena.leaderboard import arena_report
from agent.backtest.fast_forward import FastForward
from agent.backtest.report import ReportFiles, write_report
from agent.engine.engine import Engine
from agent.journal.events import Journal
from agent.journal.store import DatabaseStore, MemoryStore, Store
from agent.risk.presets import policy_from_settings
from agent.wiring import build_exchange, build_signal_sources, refuse_timeframes_below
from shared.config import Settings, load_settings
from shared.db import Database
from shared.errors import ConfigError
from shared.exchange.paper import PaperExchange
from shared.marketdata.feeds import ReplayFeed
from shared.marketdata.funding import FundingRate
from shared.marketdata.interval import interval_name
from shared.marketdata.series import read_funding, read_mark

logger = logging.getLogger(__name__)
HISTORY = 300  # candles before the start that warm the indicators up


@dataclass(frozen=True)
class BacktestRequest:
    data: Mapping[str, Path]  # symbol -> candle file (any format ReplayFeed reads)
    start: datetime | None = None  # default: after HISTORY candles of warm-up
    end: datetime | None = None  # exclusive; default: the end of the data
    overrides: Mapping[str, Any] = field(default_factory=dict)  # any setting, by name (as in .env)
    funding_rate: float = 0.0  # per FUNDING_INTERVAL_HOURS, applied to every market
    # symbol -> funding-rate file (shared.marketdata.series.read_funding): each rate settled at its own time,
    # instead of funding_rate for that market
    funding: Mapping[str, Path] = field(default_factory=dict)
    # symbol -> mark-price candles: stops, liquidations and funding on the mark (else on the last price)
    mark: Mapping[str, Path] = field(default_factory=dict)
    allow_live_ai: bool = False
    database_url: str = "sqlite:///:memory:"
    progress: bool | None = None  # None: a bar only when stderr is a terminal
    fast_forward: bool = True  # skip quiet candles in bulk (the same results; agent.backtest.fast_forward)
    # keep the engine's records in memory, written to the database at the end (agent.journal.store; the same
    # results): with a local analyst only (an LLM analyst reads its track record from the database as it goes)
    records_in_memory: bool = True


@dataclass
class BacktestResult:
    metrics: PerformanceMetrics
    equity: pd.Series
    trades: list[TradeRecord]
    prices: pd.Series
    settings: dict[str, Any]
    candles: int
    signals: int
    files: ReportFiles | None = None
    # the shadow books (agent.arena.leaderboard.arena_report): baseline, arena, llm_cost_usd, pnl net of it
    arena: dict[str, Any] = field(default_factory=dict)


def backtest_settings(request: BacktestRequest) -> Settings:
    """The settings of a run: the environment and .env, the request's overrides, simulation always."""
    overrides = {k.lower(): v for k, v in request.overrides.items()}
    overrides.update(
        trading_mode="simulation", database_url=request.database_url, symbols=",".join(request.data)
    )
    settings = load_settings(**overrides)
    offline = settings.ai_model_provider in ("rules", "follow") or settings.ai_cache == "replay"
    if not offline and not request.allow_live_ai:
        raise ConfigError(
            [
                f"AI_MODEL_PROVIDER={settings.ai_model_provider}: a backtest calls an LLM only from recorded "
                "answers (AI_CACHE=replay) or with --allow-live-ai"
            ]
        )
    calling = [n for n in settings.ai_shadow_analysts if n not in LOCAL]
    if calling and settings.ai_cache != "replay" and not request.allow_live_ai:
        raise ConfigError(
            [
                f"AI_SHADOW_ANALYSTS={','.join(calling)}: a backtest calls an LLM only from recorded "
                "answers (AI_CACHE=replay) or with --allow-live-ai"
            ]
        )
    return settings


def build_backtest_engine(settings: Settings, request: BacktestRequest, db: Database) -> Engine:
    """The engine over the request's data, its records where ``request.records_in_memory`` says."""
    analyst = build_analyst(settings, db)
    in_memory = request.records_in_memory and analyst.local and not analyst.wants_track_record
    store: Store = MemoryStore(db) if in_memory else DatabaseStore(db)
    feeds = [
        ReplayFeed(path, symbol, start_index=HISTORY, start_time=request.start)
        for symbol, path in request.data.items()
    ]
    refuse_timeframes_below(settings, list(feeds))
    engine = Engine(
        db=db,
        store=store,
        exchange=build_exchange(settings, db, books_in_memory=True),
        analyst=analyst,
        feeds=list(feeds),
        journal=Journal(None),
        policy=policy_from_settings(settings),
        candle_interval_s=0.0,
        signal_sources=build_signal_sources(settings, store),
        funding_interval_hours=settings.funding_interval_hours,
        signal_max_age_s=settings.signal_max_age_s,
    )
    add_shadow_analysts(engine.decisions.arena, settings, db)
    return engine


def _set_funding(engine: Engine, rate: float) -> None:
    if not rate:
        return
    for symbol, market in engine.markets.items():
        funding = FundingRate(symbol, rate, engine.market_now())
        market.funding = funding
        engine.market_driver.on_funding(funding)


def _set_series(engine: Engine, request: BacktestRequest) -> None:
    """The request's funding series and mark prices onto the paper exchange (unknown markets refused)."""
    for kind, files in (("--funding", request.funding), ("--mark", request.mark)):
        unknown = sorted(set(files) - set(engine.markets))
        if unknown:
            raise ValueError(f"{kind}: {', '.join(unknown)} is not a market of the backtest (--data)")
    exchange = engine.exchange
    assert isinstance(exchange, PaperExchange)
    for symbol, path in request.funding.items():
        exchange.set_funding_series(read_funding(path, symbol))
    for symbol, path in request.mark.items():
        marks, candle_s = read_mark(path, symbol), engine.feeds[symbol].interval_s
        if marks.interval_s > candle_s or candle_s % marks.interval_s:
            raise ValueError(
                f"--mark {symbol}: mark candles every {interval_name(marks.interval_s)} cannot be matched "
                f"to the {interval_name(candle_s)} price candles: give mark candles of "
                f"{interval_name(candle_s)} or finer"
            )
        exchange.set_mark_series(marks.resampled(candle_s))  # 1m marks fold into 5m price candles


def _stops(feeds: list[ReplayFeed], end: datetime | None) -> dict[str, int]:
    """Per market, the row its run ends before (the end of the data, or the first candle at ``end``)."""
    stops = {}
    for feed in feeds:
        opens = feed.open_stamps
        stops[feed.symbol] = (
            len(opens) if end is None else int(np.searchsorted(opens, end.timestamp(), side="left"))
        )
    return stops


def replay(
    engine: Engine, end: datetime | None, progress: bool | None = None, fast_forward: bool = True
) -> tuple[pd.Series, int]:
    """Feed every market's candles in time order through the engine; the equity after each minute."""
    feeds = [f for f in engine.feeds.values() if isinstance(f, ReplayFeed)]
    times: list[int] = []  # epoch seconds of each candle's close
    values: list[float] = []
    candles = 0
    show = sys.stderr.isatty() if progress is None else progress
    skipper = FastForward(engine) if fast_forward else None
    stops = _stops(feeds, end)
    total = sum(max(stops[f.symbol] - f.cursor, 0) for f in feeds)
    with tqdm(total=total, unit="candle", desc="backtest", disable=not show) as bar:
        while True:
            if skipper is not None and (quiet := skipper.quiet(stops)):
                skipped_times, equities = skipper.skip(quiet)
                times.extend(skipped_times.tolist())
                values.extend(equities.tolist())
                candles += quiet * len(skipper.feeds)
                bar.update(quiet * len(skipper.feeds))
            due = [(t, f) for f in feeds if (t := f.peek_time()) is not None and (end is None or t < end)]
            if not due:
                break
            moment = min(t for t, _ in due)
            now = [feed for t, feed in due if t == moment]
            for feed in now:
                engine.on_candle(feed, feed.next_candle())
            candles += len(now)
            if engine.signals_waiting:
                engine.process_pending_signals()
            times.append(int(engine.market_now().timestamp()))
            values.append(engine.last_equity)
            bar.update(len(now))
    index = pd.to_datetime(np.asarray(times, dtype=np.int64), unit="s", utc=True)
    equity = pd.Series(values, index=index, dtype=float, name="equity")
    return equity, candles


def run_backtest(request: BacktestRequest, out: Path | None = None) -> BacktestResult:
    """Run the engine over the data; write the report to ``out`` when given."""
    settings = backtest_settings(request)
    db = Database(settings.database_url)
    db.migrate()
    engine = build_backtest_engine(settings, request, db)
    engine.prepare()
    _set_funding(engine, request.funding_rate)
    _set_series(engine, request)
    equity, candles = replay(engine, request.end, request.progress, request.fast_forward)
    engine.store.persist()
    account = engine.exchange.account()
    funding_paid = -engine.market_driver.ledger_total("funding")
    trades = trade_records(db)
    metrics = compute_metrics(
        equity, trades, starting_equity=settings.starting_equity, fees_paid=account.fees_paid,
        funding_paid=funding_paid,
    )  # fmt: skip
    first = next(iter(request.data))
    prices = _prices(engine, first, equity.index)
    shown = _shown_settings(settings, request)
    result = BacktestResult(metrics, equity, trades, prices, shown, candles, engine.status.signals_processed)
    marks = {s: m for s in engine.feeds if (m := engine.exchange.mark_price(s)) is not None}
    result.arena = arena_report(
        db, engine.decisions.arena.names, settings.starting_equity,
        metrics.final_equity - metrics.starting_equity, marks, engine.market_now(),
    )  # fmt: skip
    if out is not None:
        result.files = write_report(
            out, metrics, equity, trades, prices, title=f"Backtest {', '.join(request.data)}", settings=shown,
            vetoes=veto_summary(db), arena=result.arena, candles=_candles(engine, equity.index),
        )  # fmt: skip
    db.dispose()
    return result


def _prices(engine: Engine, symbol: str, index: pd.DatetimeIndex) -> pd.Series:
    feed = engine.feeds[symbol]
    assert isinstance(feed, ReplayFeed)
    closes = pd.Series(
        feed.ohlcv[:, 3], index=pd.to_datetime(feed.open_stamps, unit="s", utc=True), name=symbol
    )
    if len(index) == 0:
        return closes.iloc[:0]
    one_candle = pd.Timedelta(seconds=feed.interval_s)
    return closes.loc[(closes.index >= index[0] - one_candle) & (closes.index <= index[-1])]


def _candles(engine: Engine, index: pd.DatetimeIndex) -> dict[str, pd.DataFrame]:
    """Every market's candles over the run's period (those the equity curve covers), for the report."""
    frames = {}
    for symbol, feed in engine.feeds.items():
        assert isinstance(feed, ReplayFeed)
        stamps = pd.to_datetime(feed.open_stamps, unit="s", utc=True)
        frame = pd.DataFrame(feed.ohlcv, index=stamps, columns=["open", "high", "low", "close", "volume"])
        if len(index) == 0:
            frames[symbol] = frame.iloc[:0]
            continue
        one_candle = pd.Timedelta(seconds=feed.interval_s)
        frames[symbol] = frame.loc[(stamps >= index[0] - one_candle) & (stamps < index[-1])]
    return frames


def _shown_settings(settings: Settings, request: BacktestRequest) -> dict[str, Any]:
    """What the report records about the run: data, period and every setting that shapes trading."""
    public = settings.public_view()
    keep = (
        "RISK_TOLERANCE", "STARTING_EQUITY", "TAKER_FEE", "MAKER_FEE", "SLIPPAGE_BPS",
        "MAINTENANCE_MARGIN_RATIO", "FUNDING_INTERVAL_HOURS", "DEFAULT_LEVERAGE", "AI_MODEL_PROVIDER",
        "AI_MODEL", "AI_CACHE", "INTERNAL_SIGNALS", "INTERNAL_SIGNAL_TIMEFRAME", "STRATEGIES",
        "STRATEGY_PARAMS",
    )  # fmt: skip
    shown: dict[str, Any] = {key: public[key] for key in keep}
    shown["RISK_POLICY"] = policy_from_settings(settings).as_dict()
    shown["DATA"] = {symbol: path.name for symbol, path in request.data.items()}
    shown["SIGNALS_REPLAY_FILE"] = settings.signals_replay_file.name if settings.signals_replay_file else None
    shown["START"] = request.start.isoformat() if request.start else None
    shown["END"] = request.end.isoformat() if request.end else None
    shown["FUNDING_RATE"] = request.funding_rate
    shown["FUNDING_SERIES"] = {symbol: path.name for symbol, path in request.funding.items()} or None
    # what stops, liquidations and funding were measured on, per market: "mark" (--mark) or "last"
    shown["PRICE_BASIS"] = {symbol: ("mark" if symbol in request.mark else "last") for symbol in request.data}
    shown["MARK_DATA"] = {symbol: path.name for symbol, path in request.mark.items()} or None
    return shown

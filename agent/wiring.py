"""Builds the engine from settings: the one place that picks feeds, exchange and analyst."""

from __future__ import annotations

import logging

from agent.analysis.factory import build_analyst
from agent.arena.build import add_shadow_analysts
from agent.engine.engine import Engine
from agent.engine.signals import ReplayedSignals, SignalSource, read_alerts
from agent.journal.events import Journal
from agent.journal.store import DatabaseStore, Store
from agent.risk.presets import policy_from_settings
from agent.strategies.api import Strategy, StrategyError
from agent.strategies.builtin import BUILT_IN
from agent.strategies.loader import load_strategies
from agent.strategies.source import StrategySignals
from shared.bluefin_pro.network import pro_hosts
from shared.bluefin_pro.rest import ProClient
from shared.bluefin_pro.signing import SuiKey
from shared.config import Settings
from shared.db import Database
from shared.errors import ConfigError, Rejected, Temporary
from shared.events import EventPublisher
from shared.exchange.base import Exchange
from shared.exchange.bluefin import BluefinExchange
from shared.exchange.bluefin_pro import BluefinProExchange
from shared.exchange.markets import load_market_specs
from shared.exchange.paper import PaperConfig, PaperExchange
from shared.logs import log_event
from shared.marketdata.bluefin import BluefinFeed, BluefinMarketData, bluefin_network
from shared.marketdata.bluefin_pro import BluefinProFeed, BluefinProMarketData
from shared.marketdata.candles import NAMES, TIMEFRAMES
from shared.marketdata.feeds import CANDLE_SECONDS, MarketFeed, ReplayFeed, SyntheticFeed

logger = logging.getLogger(__name__)


BLUEFIN_POLL_INTERVAL_S = 5.0


def _bluefin_feeds(settings: Settings, probe: bool) -> list[MarketFeed]:
    """Live feeds on one SDK client; with ``probe``, raise Temporary unless Bluefin answers in time."""
    from bluefin_v2_client import MARKET_SYMBOLS

    unknown = [s for s in settings.symbols if s not in {m.value for m in MARKET_SYMBOLS}]
    if unknown:
        raise ConfigError([f"SYMBOLS: {', '.join(unknown)} not listed by bluefin-v2-client"])
    hub = BluefinMarketData(
        bluefin_network(settings.bluefin_network),
        settings.symbols,
        request_timeout_s=settings.auto_probe_timeout_s,
    )
    try:
        hub.start(with_socket=False)
        if probe:
            hub.candles(settings.symbols[0], 2)
    except (Temporary, ConfigError):
        hub.stop()
        raise
    except Exception as exc:  # the SDK raises bare Exception for unusable answers
        hub.stop()
        raise Temporary(f"Bluefin client failed to start: {exc}") from exc
    hub.start_socket()
    return [BluefinFeed(hub, s, poll_interval_s=BLUEFIN_POLL_INTERVAL_S) for s in settings.symbols]


def _bluefin_pro_feeds(settings: Settings, probe: bool) -> list[MarketFeed]:
    """Live Bluefin Pro feeds on one client and one market stream. The markets must be listed; with
    ``probe`` Bluefin must answer within AUTO_PROBE_TIMEOUT_S (else Temporary)."""
    hosts = pro_hosts(settings.bluefin_network)
    timeout = settings.auto_probe_timeout_s if probe else settings.bluefin_timeout_s
    checker = ProClient(hosts, timeout_s=timeout, read_attempts=1 if probe else 4)
    try:
        listed = {str(m.get("symbol")) for m in (checker.get("/v1/exchange/info") or {}).get("markets", [])}
        unknown = [s for s in settings.symbols if s not in listed]
        if unknown:
            raise ConfigError([f"SYMBOLS: {', '.join(unknown)} not listed by Bluefin Pro ({hosts.name})"])
        BluefinProMarketData(checker, settings.symbols, stream=False).candles(settings.symbols[0], 2)
    except Rejected as exc:  # something answers there, but not as Bluefin Pro does
        raise Temporary(f"Bluefin Pro at {hosts.name} did not answer as expected: {exc}") from exc
    finally:
        checker.close()
    hub = BluefinProMarketData(ProClient(hosts, timeout_s=settings.bluefin_timeout_s), settings.symbols)
    hub.start()
    return [BluefinProFeed(hub, s) for s in settings.symbols]


def build_feeds(settings: Settings) -> list[MarketFeed]:
    """Per MARKET_DATA_SOURCE. ``auto``: Bluefin if it answers within AUTO_PROBE_TIMEOUT_S, else the replay
    file (first symbol) when it exists, else synthetic. The choice is logged and shown in /api/status.
    TRADING_MODE=real takes live Bluefin prices only: no fallback, and a Bluefin that does not answer stops
    the start with one line (ConfigError)."""
    source = settings.market_data_source
    real = settings.trading_mode == "real"
    if real and source not in ("bluefin", "auto"):
        raise ConfigError(
            [f"TRADING_MODE=real: refuses MARKET_DATA_SOURCE={source} (live Bluefin prices only)"]
        )
    if source in ("bluefin", "auto"):
        try:
            live = (
                _bluefin_pro_feeds(settings, probe=source == "auto" and not real)
                if settings.bluefin_api == "pro"
                else _bluefin_feeds(settings, probe=source == "auto" and not real)
            )
            log_event(logger, "feed_selected", source="bluefin", api=settings.bluefin_api,
                      symbols=list(settings.symbols))  # fmt: skip
            return live
        except Temporary as exc:
            if real:
                raise ConfigError(
                    [
                        f"TRADING_MODE=real: Bluefin's live prices are not available ({exc}); refusing to "
                        "start rather than trade on replayed or synthetic prices"
                    ]
                ) from exc
            if source == "bluefin":
                raise
            log_event(logger, "bluefin_unavailable_falling_back", logging.WARNING, error=str(exc))
            source = "replay" if settings.replay_file.exists() else "synthetic"
    feeds: list[MarketFeed] = []
    for index, symbol in enumerate(settings.symbols):
        use_replay = source == "replay" and index == 0
        if use_replay and settings.replay_file.exists():
            feeds.append(ReplayFeed(settings.replay_file, symbol, loop=settings.replay_loop))
        else:
            if use_replay:
                log_event(logger, "replay_file_missing", logging.WARNING, path=str(settings.replay_file))
            # beside a replay, candles of its interval: every market's clock moves alike
            feeds.append(SyntheticFeed(symbol, interval_s=feeds[0].interval_s if feeds else CANDLE_SECONDS))
        log_event(logger, "feed_selected", symbol=symbol, source=feeds[-1].source,
                  interval=NAMES[feeds[-1].interval_s])  # fmt: skip
    refuse_timeframes_below(settings, feeds)
    return feeds


def refuse_timeframes_below(settings: Settings, feeds: list[MarketFeed]) -> None:
    """Every market steps one candle at a time, so all feeds must share one interval; and a timeframe the
    settings trade or size on must be at least that interval (5m candles cannot make 1m ones). ConfigError
    with one line per problem."""
    intervals = sorted({feed.interval_s for feed in feeds})
    problems = []
    if len(intervals) > 1:
        shown = ", ".join(f"{feed.symbol} {NAMES[feed.interval_s]}" for feed in feeds)
        problems.append(f"the markets' candles differ in interval ({shown}): give files of one interval")
    base = intervals[-1] if intervals else CANDLE_SECONDS
    wanted: dict[str, str] = {"RISK_ATR_TIMEFRAME": settings.risk_atr_timeframe}
    if settings.internal_signals != "none":
        wanted["INTERNAL_SIGNAL_TIMEFRAME"] = settings.internal_signal_timeframe
    for strategy in build_strategies(settings):
        wanted[f"STRATEGIES ({strategy.name}.timeframe)"] = strategy.timeframe
    for name, timeframe in wanted.items():
        seconds = TIMEFRAMES[timeframe]
        if seconds < base or seconds % base:
            problems.append(
                f"{name}={timeframe}: the candles are {NAMES[base]}, so {timeframe} candles cannot be built "
                f"from them; choose a timeframe of at least {NAMES[base]} that it divides, or give finer data"
            )
    if problems:
        raise ConfigError(problems)


def build_exchange(settings: Settings, db: Database, books_in_memory: bool = False) -> Exchange:
    """Bluefin (TRADING_MODE=real) or the paper exchange, its books in ``db`` or, for a backtest (nothing
    to recover after a restart), in memory."""
    if settings.trading_mode == "real" and settings.bluefin_api == "pro":
        key = SuiKey.parse(settings.secret("bluefin_private_key"))
        client = ProClient(pro_hosts(settings.bluefin_network), key, timeout_s=settings.bluefin_timeout_s)
        pro = BluefinProExchange(
            client, settings.symbols, isolated=settings.bluefin_margin == "isolated",
            taker_expiry_s=settings.bluefin_taker_expiry_s,
            resting_expiry_s=settings.bluefin_order_expiry_days * 86_400,
        )  # fmt: skip
        pro.start()
        log_event(logger, "exchange_selected", exchange=pro.name, network=settings.bluefin_network,
                  account=key.address)  # fmt: skip
        return pro
    if settings.trading_mode == "real":
        exchange = BluefinExchange(
            bluefin_network(settings.bluefin_network),
            settings.secret("bluefin_private_key"),
            settings.symbols,
        )
        exchange.start()
        log_event(logger, "exchange_selected", exchange="bluefin", network=settings.bluefin_network,
                  api="v2 (legacy, delisted upstream)")  # fmt: skip
        return exchange
    return PaperExchange(
        None if books_in_memory else db,
        PaperConfig(
            starting_balance=settings.starting_equity,
            taker_fee=settings.taker_fee,
            maker_fee=settings.maker_fee,
            slippage_bps=settings.slippage_bps,
            maintenance_ratio=settings.maintenance_margin_ratio,
            markets=load_market_specs(settings.data_dir),
            default_leverage=settings.default_leverage,
            funding_interval_hours=settings.funding_interval_hours,
        ),
    )


def build_strategies(settings: Settings) -> list[Strategy]:
    """The STRATEGIES with their STRATEGY_PARAMS, loaded; a bad path, class, strategy or parameter stops
    the start (ConfigError, one line)."""
    try:
        return load_strategies(settings.strategies, settings.strategy_params)
    except StrategyError as exc:
        raise ConfigError([f"STRATEGIES: {exc}"]) from None


def build_signal_sources(settings: Settings, store: Store) -> list[SignalSource]:
    """INTERNAL_SIGNALS, STRATEGIES and SIGNALS_REPLAY_FILE, when set."""
    sources: list[SignalSource] = []
    if settings.internal_signals != "none":
        cross = BUILT_IN[settings.internal_signals]()  # the built-in strategy of that name
        timeframe, source = settings.internal_signal_timeframe, f"internal:{settings.internal_signals}"
        sources.append(StrategySignals(store, cross, timeframe=timeframe, source=source))
    sources.extend(StrategySignals(store, strategy) for strategy in build_strategies(settings))
    if settings.signals_replay_file is not None:
        sources.append(ReplayedSignals(store, read_alerts(settings.signals_replay_file)))
    return sources


def build_engine(settings: Settings, db: Database, publisher: EventPublisher | None) -> Engine:
    feeds = build_feeds(settings)
    if any(isinstance(f, BluefinFeed | BluefinProFeed) for f in feeds):
        interval = 1.0  # live: poll often, the feeds pace their own requests
    else:
        # REPLAY_SPEED times real time: a 5m file plays a candle every 5 s at 60
        candle_s = max(feed.interval_s for feed in feeds)
        interval = candle_s / settings.replay_speed if settings.replay_speed > 0 else 0.0
    store = DatabaseStore(db)
    engine = Engine(
        db=db,
        store=store,
        exchange=build_exchange(settings, db),
        analyst=build_analyst(settings, db),
        feeds=feeds,
        journal=Journal(publisher),
        policy=policy_from_settings(settings),
        candle_interval_s=interval,
        signal_sources=build_signal_sources(settings, store),
        funding_interval_hours=settings.funding_interval_hours,
        signal_max_age_s=settings.signal_max_age_s,
    )
    add_shadow_analysts(engine.decisions.arena, settings, db)
    return engine

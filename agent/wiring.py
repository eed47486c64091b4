"""Builds the engine from settings: the one place that picks feeds, exchange and analyst."""

from __future__ import annotations

import logging

from agent.analysis.rules import build_analyst
from agent.engine import Engine
from agent.journal import Journal
from agent.risk.sizing import RiskLimits
from shared.config import Settings
from shared.db import Database
from shared.errors import ConfigError
from shared.events import EventPublisher
from shared.exchange.base import Exchange
from shared.exchange.paper import PaperExchange
from shared.logs import log_event
from shared.marketdata.feeds import CANDLE_SECONDS, MarketFeed, ReplayFeed, SyntheticFeed

logger = logging.getLogger(__name__)


def build_feeds(settings: Settings) -> list[MarketFeed]:
    """The replay file feeds the first symbol; other symbols (and a missing file) use the synthetic feed."""
    if settings.market_data_source == "bluefin":
        raise ConfigError(
            ["MARKET_DATA_SOURCE: 'bluefin' is not available in this build; use replay or synthetic"]
        )
    feeds: list[MarketFeed] = []
    for index, symbol in enumerate(settings.symbols):
        use_replay = settings.market_data_source == "replay" and index == 0
        if use_replay and settings.replay_file.exists():
            feeds.append(ReplayFeed(settings.replay_file, symbol))
        else:
            if use_replay:
                log_event(logger, "replay_file_missing", logging.WARNING, path=str(settings.replay_file))
            feeds.append(SyntheticFeed(symbol))
        log_event(logger, "feed_selected", symbol=symbol, source=feeds[-1].source)
    return feeds


def build_exchange(settings: Settings, db: Database) -> Exchange:
    if settings.trading_mode == "real":
        raise ConfigError(["TRADING_MODE: 'real' needs the Bluefin adapter, which is not in this build"])
    return PaperExchange(db, settings.starting_equity, settings.taker_fee)


def build_engine(settings: Settings, db: Database, publisher: EventPublisher | None) -> Engine:
    interval = CANDLE_SECONDS / settings.replay_speed if settings.replay_speed > 0 else 0.0
    return Engine(
        db=db,
        exchange=build_exchange(settings, db),
        analyst=build_analyst(settings.ai_model_provider),
        feeds=build_feeds(settings),
        journal=Journal(publisher),
        limits=RiskLimits(settings.max_position_size, settings.risk_tolerance, settings.default_leverage),
        candle_interval_s=interval,
    )

"""Fast-forward over quiet candles in a backtest: the same results as stepping every candle, much sooner.

Most minutes of a backtest change nothing but the price: no resting order is reached, no liquidation, no
stop to move, no timeframe closes that an exit rule reads, no signal source due (each names the closes it
reads or the time it acts next: a replayed alert's time, an internal cross found ahead on the prepared
market state), no funding settlement that matters, no new UTC day, no breaker crossed. Before each candle
the driver asks ``quiet`` how many of the coming candles are like that, checking every condition at once
over the candles' arrays (numpy); ``skip`` then applies them in one go: the market state moves its cursor,
the exchange its mark and clock, the position plan its best price, the breakers their peak, and the equity
of each of those minutes is computed from the same formula ``PaperExchange.account`` uses. The first
candle that is not quiet goes through the engine's normal step. A test runs backtests both ways and
compares trades and equity exactly.

Only for a single market replayed from a file onto the paper exchange (with several markets every candle
goes through the normal step).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np

from agent.engine import Engine
from agent.positions import MarketView
from shared.exchange.paper import PaperExchange
from shared.marketdata.candles import EPOCH
from shared.marketdata.feeds import CANDLE_SECONDS, ReplayFeed
from shared.marketdata.prepared import PreparedMarketState

CHUNK = 2_048  # candles examined at a time


class FastForward:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        feeds = list(engine.feeds.values())
        self.feed = feeds[0] if len(feeds) == 1 and isinstance(feeds[0], ReplayFeed) else None
        self.usable = self.feed is not None and isinstance(engine.exchange, PaperExchange)

    def quiet(self, stop: int) -> int:
        """How many of the candles from the feed's cursor (and before row ``stop``) can be skipped."""
        engine, feed = self.engine, self.feed
        if not self.usable or feed is None:
            return 0
        exchange = engine.exchange
        assert isinstance(exchange, PaperExchange)
        symbol = feed.symbol
        market = engine.markets[symbol]
        view = engine.views.get(symbol)
        if (
            view is None or not isinstance(market, PreparedMarketState) or engine.status.state != "running"
            or engine.signals_waiting or engine.algos.active or not engine.exchange_in_sync
            or exchange.liquidations_pending
        ):  # fmt: skip
            return 0
        limits = engine.manager.quiet_limits(symbol, view)
        start = feed.cursor
        count = min(stop, start + CHUNK) - start
        if limits.blocked or count <= 0:
            return 0
        sources = [source.quiet(symbol, market) for source in engine.signal_sources]
        count = self._before_times(
            count, start, limits.at, exchange.funding_event(), engine.guard.next_event(),
            *(at for _, at in sources),
        )  # fmt: skip
        count = self._before_closes(count, market, limits.timeframes.union(*(tfs for tfs, _ in sources)))
        if count <= 0:
            return 0
        candles = feed.ohlcv[start : start + count]
        up, down = exchange.quiet_band(symbol)
        touched = np.flatnonzero(
            (candles[:, 1] >= min(up, limits.up)) | (candles[:, 2] <= max(down, limits.down))
        )
        if len(touched):
            count = int(touched[0])
        breach = engine.guard.first_breach(self._equities(candles[:count, 3]))
        return count if breach is None else breach

    def _before_times(self, count: int, start: int, *moments: datetime | None) -> int:
        """Candles that close before every moment: the one closing at (or just after) a moment goes through
        the normal step."""
        assert self.feed is not None
        closes = self.feed.close_stamps[start : start + count]
        for moment in moments:
            if moment is not None:
                seconds = (moment - EPOCH).total_seconds()
                count = min(count, int(np.searchsorted(closes, math.ceil(seconds), side="left")))
        return count

    def _before_closes(self, count: int, market: PreparedMarketState, timeframes: frozenset[str]) -> int:
        """Candles before the next close of any of ``timeframes`` (that one goes through the normal step)."""
        first = market.cursor + 1  # the market-state index of the feed's next candle
        for timeframe in timeframes:
            closes_at = market.next_close(timeframe, first)
            if closes_at is not None:
                count = min(count, closes_at - first)
        return count

    def _equities(self, closes: np.ndarray) -> np.ndarray:
        """Equity after each candle, as PaperExchange.account computes it: balance + (mark - entry) x qty."""
        exchange = self.engine.exchange
        assert isinstance(exchange, PaperExchange) and self.feed is not None
        balance = exchange.account().balance
        held = [p.position for p in exchange.exchange_positions() if p.position.symbol == self.feed.symbol]
        if not held:
            return np.full(len(closes), balance)
        return balance + (closes - held[0].entry_price) * held[0].quantity

    def skip(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Apply ``count`` quiet candles; their close times (epoch seconds) and the equity after each."""
        engine, feed = self.engine, self.feed
        assert feed is not None and count > 0
        start = feed.cursor
        candles = feed.ohlcv[start : start + count]
        symbol = feed.symbol
        market = engine.markets[symbol]
        assert isinstance(market, PreparedMarketState)
        market.skip(count)
        engine.read_history_from(feed)
        feed.cursor = start + count
        (last,) = feed.candles(start + count - 1, start + count)
        now = last.open_time + timedelta(seconds=CANDLE_SECONDS)
        engine.exchange.advance(symbol, last.close, now)  # type: ignore[attr-defined]
        engine.manager.skip(symbol, float(candles[:, 1].max()), float(candles[:, 2].min()))
        equities = self._equities(candles[:, 3])
        engine.guard.absorb(equities)
        engine.equity_samples.extend(equities.tolist())
        engine.last_equity = float(equities[-1])
        engine.status.market_time = now
        engine.status.candles_seen += count
        atr = market.indicator(engine.policy.atr_timeframe, "atr")
        engine.views[symbol] = MarketView(
            now, last, {}, atr if atr == atr else None, market.funding, engine.funding_interval_hours
        )
        return feed.close_stamps[start : start + count], equities

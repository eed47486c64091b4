"""Fast-forward over quiet candles in a backtest: the same results as stepping every candle, much sooner.

Most minutes of a backtest change nothing but the price: no resting order is reached, no liquidation, no
stop to move (on the last price, nor on the mark when a mark series is given), no timeframe closes that an
exit rule reads, no signal source due (each names the closes it
reads or the time it acts next: a replayed alert's time, an internal cross found ahead on the prepared
market state), no funding settlement that matters, no new UTC day, no breaker crossed. Before each candle
the driver asks ``quiet`` how many of the coming candles are like that, checking every condition at once
over the candles' arrays (numpy); ``skip`` then applies them in one go: the market state moves its cursor,
the exchange its mark and clock, the position plan its best price, the breakers their peak, and the equity
of each of those minutes is computed from the same formula ``PaperExchange.account`` uses. The first
candle that is not quiet goes through the engine's normal step. A test runs backtests both ways and
compares trades and equity exactly.

For markets replayed from files onto the paper exchange; with several markets, a run is skipped where they
all have the same minutes, and its equity is computed market by market as the normal step sees it.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from agent.engine.engine import Engine
from shared.exchange.paper import PaperExchange
from shared.marketdata.candles import EPOCH
from shared.marketdata.feeds import ReplayFeed
from shared.marketdata.prepared import PreparedMarketState

CHUNK = 2_048  # candles examined at a time


class FastForward:
    """Skips quiet candles of every replayed market at once. Markets move together: a run is skipped only
    where every market has the same minutes (a gap in one of them ends the run there)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        feeds = list(engine.feeds.values())
        self.replayed = [f for f in feeds if isinstance(f, ReplayFeed)]
        self.usable = (
            bool(feeds) and len(self.replayed) == len(feeds) and isinstance(engine.exchange, PaperExchange)
        )
        self.feeds: list[ReplayFeed] = []  # the markets with candles left, as of the last ``quiet``

    def quiet(self, stops: dict[str, int]) -> int:
        """How many of the coming minutes can be skipped: the same count of candles from every feed's
        cursor, each before its feed's row ``stops[symbol]``."""
        engine = self.engine
        self.feeds = [f for f in self.replayed if f.cursor < stops[f.symbol]]
        if not self.usable or not self.feeds:
            return 0
        exchange = engine.exchange
        assert isinstance(exchange, PaperExchange)
        if (
            engine.status.state != "running" or engine.signals_waiting or engine.algos.active
            or not (engine.exchange_in_sync or engine.acknowledge_exchange())
            or exchange.liquidations_pending
        ):  # fmt: skip
            return 0
        moments = (exchange.funding_event(), engine.guard.next_event())
        count = CHUNK
        for feed in self.feeds:
            count = min(count, self._market_quiet(feed, stops[feed.symbol], moments))
            if count <= 0:
                return 0
        count = self._aligned(count)
        if count <= 0:
            return 0
        breach = engine.guard.first_breach(self._equities(count).ravel())
        return count if breach is None else breach // len(self.feeds)

    def _market_quiet(self, feed: ReplayFeed, stop: int, moments: tuple[datetime | None, ...]) -> int:
        """The quiet candles of one market from its cursor (0 when it must step now)."""
        engine, symbol = self.engine, feed.symbol
        exchange = engine.exchange
        assert isinstance(exchange, PaperExchange)
        market = engine.markets[symbol]
        view = engine.views.get(symbol)
        if view is None or not isinstance(market, PreparedMarketState):
            return 0
        limits = engine.reviews.quiet_limits(symbol, engine.manager.quiet_limits(symbol, view))
        start = feed.cursor
        count = min(stop, start + CHUNK) - start
        if limits.blocked or count <= 0:
            return 0
        sources = [source.quiet(symbol, market) for source in engine.signal_sources]
        count = _before_times(feed, count, limits.at, *moments, *(at for _, at in sources))
        count = _before_closes(count, market, limits.timeframes.union(*(tfs for tfs, _ in sources)))
        if count <= 0:
            return 0
        candles = feed.ohlcv[start : start + count]
        up, down = exchange.quiet_band(symbol)
        up, down = min(up, limits.up), max(down, limits.down)
        reached = (candles[:, 1] >= up) | (candles[:, 2] <= down)
        marks = exchange.mark_extremes(symbol, feed.close_stamps[start : start + count])
        if marks is not None:  # stops and liquidations trigger on the mark: its wicks count as well
            reached |= (marks[:, 0] >= up) | (marks[:, 1] <= down)
        touched = np.flatnonzero(reached)
        return int(touched[0]) if len(touched) else count

    def _aligned(self, count: int) -> int:
        """The first ``count`` minutes, cut where the markets' minutes stop being the same."""
        first = self.feeds[0]
        stamps = first.open_stamps[first.cursor : first.cursor + count]
        for feed in self.feeds[1:]:
            other = feed.open_stamps[feed.cursor : feed.cursor + count]
            differ = np.flatnonzero(other[: len(stamps)] != stamps[: len(other)])
            count = min(count, len(other), int(differ[0]) if len(differ) else count)
        return count

    def _equities(self, count: int) -> np.ndarray:
        """The equity after each market's candle of each minute, (count, markets), as the normal step sees
        it: markets take their candle one after the other, so while a minute's first market stands at its
        new close the others still stand at the previous minute's. Summed as PaperExchange.account does
        (balance + the positions' (mark - entry) x qty in its order), so the figures are the same to the
        last bit."""
        exchange = self.engine.exchange
        assert isinstance(exchange, PaperExchange)
        balance = exchange.account().balance
        columns = {feed.symbol: (column, feed) for column, feed in enumerate(self.feeds)}
        unrealized = np.zeros((count, len(self.feeds)))
        for held in exchange.exchange_positions():
            position = held.position
            mark = exchange.mark_price(position.symbol)
            if mark is None:
                continue
            marks = np.full((count, len(self.feeds)), mark)
            if position.symbol in columns:
                column, feed = columns[position.symbol]
                closes = feed.ohlcv[feed.cursor : feed.cursor + count, 3]
                marks[:, column:] = closes[:, None]  # this market has taken the minute's candle
                marks[1:, :column] = closes[:-1, None]  # the markets before it see the previous close
            unrealized = unrealized + (marks - position.entry_price) * position.quantity
        return balance + unrealized

    def skip(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Apply ``count`` quiet minutes (as ``quiet`` just allowed) to every market with candles left; their
        close times (epoch seconds) and the equity after each minute."""
        engine = self.engine
        assert count > 0
        equities = self._equities(count)
        stamps = self.feeds[0].close_stamps[self.feeds[0].cursor : self.feeds[0].cursor + count]
        for feed in self.feeds:
            self._skip_market(feed, count)
        engine.absorb_skipped_equity(equities.ravel())
        return stamps, equities[:, -1]

    def _skip_market(self, feed: ReplayFeed, count: int) -> None:
        start = feed.cursor
        candles = feed.ohlcv[start : start + count]
        market = self.engine.markets[feed.symbol]
        assert isinstance(market, PreparedMarketState)
        market.skip(count)
        feed.cursor = start + count
        (last,) = feed.candles(start + count - 1, start + count)
        self.engine.absorb_skipped_market(feed, last, float(candles[:, 1].max()), float(candles[:, 2].min()))


def _before_times(feed: ReplayFeed, count: int, *moments: datetime | None) -> int:
    """Candles that close before every moment: the one closing at (or just after) a moment goes through the
    normal step."""
    closes = feed.close_stamps[feed.cursor : feed.cursor + count]
    for moment in moments:
        if moment is not None:
            seconds = (moment - EPOCH).total_seconds()
            count = min(count, int(np.searchsorted(closes, math.ceil(seconds), side="left")))
    return count


def _before_closes(count: int, market: PreparedMarketState, timeframes: frozenset[str]) -> int:
    """Candles before the next close of any of ``timeframes`` (that one goes through the normal step)."""
    first = market.cursor + 1  # the market-state index of the feed's next candle
    for timeframe in timeframes:
        closes_at = market.next_close(timeframe, first)
        if closes_at is not None:
            count = min(count, closes_at - first)
    return count

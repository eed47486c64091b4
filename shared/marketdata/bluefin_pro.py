"""Bluefin Pro public market data: candles (last and mark), depth, ticker, funding history over REST, and
the market stream (trades, ticker, partial depth, 1m candles, mark price).

``BluefinProMarketData`` is one client and one market stream for every traded symbol; ``BluefinProFeed`` is
the per-symbol ``MarketFeed`` on top of it. Closed 1m candles come from REST, fetched from the last one
delivered, so a gap (a dropped stream, a restart, a slow poll) is always backfilled: while the stream is
up a candle's close on the stream triggers the fetch at once (and a slow poll runs anyway), while it is down
the feed polls every ``poll_interval_s``. The newest row of an answer that reaches the present is the still
open candle and is held back. The stream reconnects and resubscribes by itself (``shared.bluefin_pro
.streams``). The feed is ``stale`` when neither REST nor the stream has delivered for ``stale_after_s``.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

from shared.bluefin_pro.orders import from_millis
from shared.bluefin_pro.rest import ProClient
from shared.bluefin_pro.streams import Message, Stream
from shared.bluefin_pro.units import from_e9, from_e9_or
from shared.errors import Temporary
from shared.logs import log_event
from shared.marketdata.feeds import CANDLE_SECONDS, ExchangeFeed
from shared.marketdata.funding import FundingRate
from shared.marketdata.orderbook import BookError, OrderBook
from shared.models import Candle

logger = logging.getLogger(__name__)
MAX_CANDLES_PER_CALL = 1000
MARK_CANDLES_KEPT = 2_000  # mark-price candles kept for the engine to pass on
MARKET_STREAMS = ("Candlestick_1m_Last", "Mark_Price", "Ticker", "Partial_Depth_20", "Recent_Trade")
EXTRAS_EVERY_S = 30.0
LIVE_FOR_S = 30.0  # a book or ticker from the stream older than this is not used (REST is asked instead)


def parse_candle_rows(rows: Any, symbol: str, timeframe: str = "1m") -> list[Candle]:
    """``[[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades], ...]`` (e9 strings),
    oldest first."""
    if not isinstance(rows, list):
        raise Temporary("Bluefin candlesticks: expected a list")
    candles = [
        Candle(
            symbol,
            from_millis(row[0]),
            from_e9(row[1]),
            from_e9(row[2]),
            from_e9(row[3]),
            from_e9(row[4]),
            from_e9(row[5]),
            timeframe,
        )
        for row in rows
    ]
    return sorted(candles, key=lambda c: c.open_time)


def parse_depth(depth: Any, symbol: str) -> OrderBook:
    if not isinstance(depth, dict):
        raise Temporary("Bluefin depth: expected an object")
    at = from_millis(depth.get("updatedAtMillis") or int(time.time() * 1000))
    return OrderBook(
        symbol, at,
        tuple((from_e9(p), from_e9(q)) for p, q in depth.get("bidsE9", [])),
        tuple((from_e9(p), from_e9(q)) for p, q in depth.get("asksE9", [])),
    )  # fmt: skip


def funding_of(ticker: dict[str, Any], symbol: str) -> FundingRate:
    """The ticker's funding: the last hourly rate, the estimate for the next, open interest."""
    estimate = ticker.get("estimatedFundingRateE9")
    return FundingRate(
        symbol, from_e9_or(ticker.get("lastFundingRateE9")), datetime.now(UTC),
        predicted=from_e9(estimate) if estimate not in (None, "") else None,
        open_interest=from_e9_or(ticker.get("openInterestE9")) or None,
    )  # fmt: skip


class BluefinProMarketData:
    """REST market data plus one market stream, shared by every symbol's feed."""

    def __init__(self, client: ProClient, symbols: tuple[str, ...], stream: bool = True) -> None:
        self.client = client
        self.symbols = symbols
        self.last_message_at = 0.0  # monotonic, of the stream
        self.live_books: dict[str, OrderBook] = {}
        self.live_tickers: dict[str, dict[str, Any]] = {}
        self._live_at: dict[tuple[str, str], float] = {}  # (kind, symbol) -> monotonic time it came
        self._candle_started: dict[str, int] = {}  # per symbol: the open time (ms) of the candle in progress
        self._closed: set[str] = set()  # symbols whose 1m candle closed on the stream since the last fetch
        self._lock = threading.Lock()
        self._stream = (
            Stream("market", client.hosts.market_stream, self._subscriptions, self._on_message)
            if stream
            else None
        )

    def start(self) -> None:
        if self._stream is not None:
            self._stream.start()

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
        self.client.close()

    @property
    def stream_connected(self) -> bool:
        return self._stream is not None and self._stream.connected

    # --- REST -----------------------------------------------------------------------------------------------
    def candles(
        self,
        symbol: str,
        limit: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        interval: str = "1m",
        price: str = "Last",
    ) -> list[Candle]:
        rows = self.client.get(
            "/v1/exchange/candlesticks",
            {"symbol": symbol, "interval": interval, "type": price, "limit": min(limit, MAX_CANDLES_PER_CALL),
             "startTimeAtMillis": start_ms, "endTimeAtMillis": end_ms},
        )  # fmt: skip
        return parse_candle_rows(rows, symbol, interval)

    def ticker(self, symbol: str) -> dict[str, Any]:
        data = self.client.get("/v1/exchange/ticker", {"symbol": symbol})
        if not isinstance(data, dict):
            raise Temporary("Bluefin ticker: expected an object")
        return data

    def orderbook(self, symbol: str, depth: int = 20) -> OrderBook:
        return parse_depth(self.client.get("/v1/exchange/depth", {"symbol": symbol, "limit": depth}), symbol)

    def funding_history(
        self,
        symbol: str,
        start_ms: int | None,
        end_ms: int | None,
        limit: int = MAX_CANDLES_PER_CALL,
        page: int = 1,
    ) -> list[FundingRate]:
        """Hourly funding rates, oldest first."""
        rows = self.client.get(
            "/v1/exchange/fundingRateHistory",
            {"symbol": symbol, "startTimeAtMillis": start_ms, "endTimeAtMillis": end_ms, "limit": limit,
             "page": page},
        ) or []  # fmt: skip
        rates = [
            FundingRate(symbol, from_e9(r["fundingRateE9"]), from_millis(r["fundingTimeAtMillis"]))
            for r in rows
        ]
        return sorted(rates, key=lambda r: r.time)

    # --- the market stream ----------------------------------------------------------------------------------
    def _subscriptions(self) -> list[Message]:
        streams = [{"symbol": s, "streams": list(MARKET_STREAMS)} for s in self.symbols]
        return [{"method": "Subscribe", "dataStreams": streams}]

    def _on_message(self, message: Message) -> None:
        event, payload = message.get("event"), message.get("payload") or {}
        symbol = str(payload.get("symbol", ""))
        with self._lock:
            self.last_message_at = time.monotonic()
            if event == "CandlestickUpdate" and symbol in self.symbols:
                started = int(payload.get("startTime", 0))
                previous = self._candle_started.get(symbol)
                if previous is not None and started > previous:
                    self._closed.add(symbol)  # a new candle began: the one before it has closed
                self._candle_started[symbol] = max(started, previous or 0)
            elif event == "TickerUpdate" and symbol:
                self.live_tickers[symbol] = payload
                self._live_at["ticker", symbol] = self.last_message_at
            elif event == "OrderbookPartialDepthUpdate" and symbol:
                try:
                    self.live_books[symbol] = parse_depth(payload, symbol)
                    self._live_at["book", symbol] = self.last_message_at
                except (BookError, ValueError, TypeError, Temporary) as exc:
                    log_event(logger, "bluefin_book_update_unusable", logging.WARNING, symbol=symbol,
                              error=str(exc))  # fmt: skip

    def live(self, kind: str, symbol: str, within_s: float = LIVE_FOR_S) -> bool:
        """Did the stream deliver a ``kind`` (book, ticker) of ``symbol`` within the last ``within_s``?"""
        return time.monotonic() - self._live_at.get((kind, symbol), -math.inf) <= within_s

    def take_closed(self, symbol: str) -> bool:
        """Did the stream see ``symbol``'s 1m candle close since the last call?"""
        with self._lock:
            closed = symbol in self._closed
            self._closed.discard(symbol)
            return closed


class BluefinProFeed(ExchangeFeed):
    """Closed 1m candles of one market from Bluefin Pro (see the module docstring)."""

    source = "bluefin"

    def __init__(
        self,
        hub: BluefinProMarketData,
        symbol: str,
        poll_interval_s: float = 2.0,
        quiet_poll_s: float = 15.0,
        stale_after_s: float = 90.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        super().__init__(hub, symbol, MAX_CANDLES_PER_CALL, stale_after_s)
        self.hub: BluefinProMarketData = hub
        self.poll_interval_s = poll_interval_s
        self.quiet_poll_s = quiet_poll_s
        self.backoff_max_s = backoff_max_s
        self.backfilled = 0  # candles fetched after a gap (more than one at a time)
        self._last_poll = 0.0
        self._failures = 0
        self._next_try = 0.0
        self._extras_at = -EXTRAS_EVERY_S
        self._book: dict[str, float] | None = None
        self._funding: FundingRate | None = None
        self.want_marks = False  # fetch the mark-price candle of every candle (a paper exchange follows them)
        self._mark_candles: dict[datetime, Candle] = {}

    def _due(self, now: float) -> bool:
        if now < self._next_try or now - self._last_poll < 0.2:
            return False
        if self.hub.take_closed(self.symbol):
            return True  # a candle just closed on the stream
        wait = self.quiet_poll_s if self.hub.stream_connected else self.poll_interval_s
        return now - self._last_poll >= wait

    def poll(self) -> list[Candle]:
        now = time.monotonic()
        if not self._due(now):
            return []
        self._last_poll = now
        fresh: list[Candle] = []
        try:
            while True:
                start_ms = (
                    int(self._last_emitted.timestamp() * 1000) + CANDLE_SECONDS * 1000
                    if self._last_emitted is not None
                    else None
                )
                batch = self.hub.candles(self.symbol, MAX_CANDLES_PER_CALL, start_ms=start_ms)
                reached_present = len(batch) < MAX_CANDLES_PER_CALL
                if reached_present:
                    batch = batch[:-1]  # the newest is still open
                batch = [c for c in batch if self._last_emitted is None or c.open_time > self._last_emitted]
                if batch:
                    self._last_emitted = batch[-1].open_time
                    fresh.extend(batch)
                if reached_present or not batch:
                    break
        except Temporary as exc:
            self._failures += 1
            delay = min(2**self._failures, self.backoff_max_s) * (1 + random.random() * 0.25)
            self._next_try = now + delay
            log_event(logger, "bluefin_candles_failed", logging.WARNING, symbol=self.symbol, error=str(exc),
                      retry_in_s=round(delay, 2), stale=self.stale)  # fmt: skip
            return fresh
        self._failures = 0
        self._last_success = time.monotonic()
        if fresh and self.want_marks:
            self._fetch_marks(fresh)
        if len(fresh) > 1:
            self.backfilled += len(fresh)
            log_event(logger, "bluefin_candles_backfilled", symbol=self.symbol, candles=len(fresh))
        return fresh

    def next_candle(self) -> Candle:
        raise Temporary("the Bluefin Pro feed is polled, not stepped")

    def follow_mark(self) -> None:
        self.want_marks = True

    def _fetch_marks(self, fresh: list[Candle]) -> None:
        """The mark-price candles of ``fresh`` (kept a while for ``mark_candle``); on a failure those minutes
        go without (the paper exchange then uses the last price for them)."""
        start_ms = int(fresh[0].open_time.timestamp() * 1000)
        end_ms = int(fresh[-1].open_time.timestamp() * 1000)
        try:
            marks = self.hub.candles(
                self.symbol,
                min(len(fresh), MAX_CANDLES_PER_CALL),
                start_ms=start_ms,
                end_ms=end_ms,
                price="Mark",
            )
        except Temporary as exc:
            log_event(
                logger, "bluefin_mark_candles_failed", logging.WARNING, symbol=self.symbol, error=str(exc)
            )
            return
        for mark in marks:
            self._mark_candles[mark.open_time] = mark
        for stale in sorted(self._mark_candles)[:-MARK_CANDLES_KEPT]:
            del self._mark_candles[stale]

    def mark_candle(self, open_time: datetime) -> Candle | None:
        return self._mark_candles.get(open_time)

    def derivatives(self) -> tuple[dict[str, float] | None, FundingRate | None]:
        """Order-book metrics and funding (the stream's when it has them, else REST every EXTRAS_EVERY_S);
        on a temporary failure the last values are kept."""
        now = time.monotonic()
        live = self.hub.live_books.get(self.symbol) if self.hub.live("book", self.symbol) else None
        if live is not None:
            try:
                self._book = live.metrics()
            except BookError:
                live = None
        ticker = self.hub.live_tickers.get(self.symbol) if self.hub.live("ticker", self.symbol) else None
        if ticker is not None:
            self._funding = funding_of(ticker, self.symbol)
        if (live is None or ticker is None) and now - self._extras_at >= EXTRAS_EVERY_S:
            self._extras_at = now
            try:
                if live is None:
                    self._book = self.hub.orderbook(self.symbol).metrics()
                if ticker is None:
                    self._funding = funding_of(self.hub.ticker(self.symbol), self.symbol)
            except (Temporary, BookError) as exc:
                log_event(
                    logger, "bluefin_extras_failed", logging.WARNING, symbol=self.symbol, error=str(exc)
                )
        return self._book, self._funding

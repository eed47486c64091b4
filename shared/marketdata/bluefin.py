"""Bluefin public market data through bluefin-v2-client: candles, order book, funding, market data and
recent trades over REST, plus live trades over the SDK's socket.io connection.

The SDK is asynchronous and has module-level socket state, so one ``BluefinMarketData`` per process owns
an event loop in a background thread and serves every symbol; ``BluefinFeed`` is the per-symbol
``MarketFeed`` on top of it. Every SDK call runs with a timeout; error answers (the SDK hands back the
JSON body of a 429 or 5xx as if it were data) become ``Temporary`` and the feed backs off with jitter.
When neither REST nor the socket has delivered anything for ``stale_after_s`` the feed is ``stale``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.errors import ConfigError, Temporary
from shared.logs import log_event
from shared.marketdata.candles import TickCandleBuilder
from shared.marketdata.feeds import ExchangeFeed
from shared.marketdata.funding import FundingRate
from shared.marketdata.orderbook import BookError, OrderBook
from shared.models import Candle

logger = logging.getLogger(__name__)
T = TypeVar("T")
E18 = 10**18  # an int: int / int division is correctly rounded, int / float is not
MAX_CANDLES_PER_CALL = 1000
EXTRAS_EVERY_S = 30.0


def bluefin_network(name: str) -> dict[str, str]:
    """SUI_PROD, SUI_STAGING, or a custom gateway URL (tests and private gateways)."""
    from bluefin_v2_client.constants import Networks

    if name in Networks:
        return dict(Networks[name])
    if name.startswith(("http://", "https://")):
        url = name.rstrip("/")
        ws = url.replace("https://", "wss://").replace("http://", "ws://")
        return {"url": url, "apiGateway": url, "socketURL": url, "dmsURL": url, "webSocketURL": ws,
                "onboardingUrl": url, "UUID": ""}  # fmt: skip
    raise ConfigError([f"BLUEFIN_NETWORK: {name!r} is not SUI_PROD, SUI_STAGING or an http(s) URL"])


def from_e18(value: Any) -> float:
    """Bluefin sends numbers as 1e18 fixed-point integers (usually as strings)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a number: {value!r}")
    return int(value) / E18 if isinstance(value, str | int) else float(value) / E18


def _check_answer(raw: Any, what: str) -> Any:
    if isinstance(raw, dict) and "error" in raw:
        error = raw["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise Temporary(f"Bluefin {what}: {message}")
    if not isinstance(raw, dict | list):  # the SDK returns the response object itself on a 503
        raise Temporary(f"Bluefin {what}: unexpected answer {type(raw).__name__}")
    return raw


def parse_candles(raw: Any, symbol: str) -> list[Candle]:
    """``[[startMs, open, high, low, close, endMs, volume, ...], ...]`` in 1e18 fixed point."""
    rows = _check_answer(raw, "candles")
    if not isinstance(rows, list):
        raise Temporary("Bluefin candles: expected a list")
    candles = []
    for row in rows:
        start = datetime.fromtimestamp(int(row[0]) / 1000, UTC)
        o, h, low, c = (from_e18(v) for v in row[1:5])
        candles.append(Candle(symbol, start, o, h, low, c, from_e18(row[6])))
    return candles


def parse_orderbook(raw: Any, symbol: str) -> OrderBook:
    book = _check_answer(raw, "order book")
    bids = tuple((from_e18(p), from_e18(q)) for p, q in book.get("bids", []))
    asks = tuple((from_e18(p), from_e18(q)) for p, q in book.get("asks", []))
    return OrderBook(symbol, datetime.now(UTC), bids, asks)


def parse_funding(raw: Any, symbol: str) -> FundingRate:
    data = _check_answer(raw, "funding rate")
    at = datetime.fromtimestamp(int(data.get("time", time.time() * 1000)) / 1000, UTC)
    return FundingRate(symbol, from_e18(data["fundingRate"]), at)


def _numbers(raw: dict[str, Any]) -> dict[str, float]:
    """The fixed-point number fields of an answer, as floats."""
    return {k: from_e18(v) for k, v in raw.items() if isinstance(v, str) and v.lstrip("-").isdigit()}


class BluefinMarketData:
    """One SDK client on a private event loop; REST calls with timeouts; live trades from the socket."""

    def __init__(
        self, network: dict[str, str], symbols: tuple[str, ...], request_timeout_s: float = 5.0
    ) -> None:
        self.network = network
        self.symbols = symbols
        self.request_timeout_s = request_timeout_s
        self.builders = {s: TickCandleBuilder(s) for s in symbols}
        self.last_message_at = 0.0
        self.last_trade_price: dict[str, float] = {}
        self.live_books: dict[str, OrderBook] = {}
        self.socket_connected = False
        self.reconnects = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="bluefin-market-data", daemon=True
        )
        self._client: Any = None
        self._supervisor: concurrent.futures.Future[None] | None = None
        self._closing = False
        self._lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------------------------
    def start(self, with_socket: bool = True) -> None:
        self._thread.start()
        self.run(self._create_client)
        if with_socket:
            self.start_socket()

    def start_socket(self) -> None:
        if self._supervisor is None:
            self._supervisor = asyncio.run_coroutine_threadsafe(self._socket_supervisor(), self._loop)

    async def _create_client(self) -> None:
        import socketio
        from bluefin_v2_client import BluefinClient, sockets_lib

        # The SDK keeps its socket.io client in a module global bound to the first event loop that used it;
        # give it a fresh one on this loop, with the SDK's own handlers: a new hub never inherits a dead one.
        fresh = socketio.AsyncClient()
        fresh.on("*", sockets_lib.Sockets.listener)
        fresh.on("connect", sockets_lib.Sockets.connect)
        fresh.on("disconnect", sockets_lib.Sockets.disconnect)
        sockets_lib.sio = fresh
        self._client = BluefinClient(True, self.network, "")
        await self._client.init(False)  # contract addresses only: public data needs no account

    def stop(self) -> None:
        self._closing = True
        if self._client is not None:
            try:
                self.run(self._close_client, timeout_s=5)
            except Temporary as exc:
                log_event(logger, "bluefin_close_failed", logging.WARNING, error=str(exc))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _close_client(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
        await self._client.socket.close()
        await self._client.apis.close_session()
        await self._client.dms_api.close_session()
        await asyncio.sleep(0.05)  # let the cancelled supervisor finish before the loop stops

    def run(self, factory: Callable[[], Coroutine[Any, Any, T]], timeout_s: float | None = None) -> T:
        """Run an SDK coroutine on the feed's loop; a timeout or a connection error is ``Temporary``."""
        import aiohttp

        future = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(factory(), timeout_s or self.request_timeout_s), self._loop
        )
        try:
            return future.result()
        except TimeoutError as exc:
            raise Temporary(f"Bluefin did not answer within {timeout_s or self.request_timeout_s} s") from exc
        except aiohttp.ClientError as exc:
            raise Temporary(f"Bluefin connection failed: {exc}") from exc

    # --- REST --------------------------------------------------------------------------------------------
    def candles(
        self,
        symbol: str,
        limit: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        interval: str = "1m",
    ) -> list[Candle]:
        from bluefin_v2_client import MARKET_SYMBOLS
        from bluefin_v2_client.enumerations import Interval

        params: dict[str, Any] = {
            "symbol": MARKET_SYMBOLS(symbol),
            "interval": Interval(interval),
            "limit": limit,
        }
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        raw = self.run(lambda: self._client.get_market_candle_stick_data(params))
        return parse_candles(raw, symbol)

    def orderbook(self, symbol: str, depth: int = 20) -> OrderBook:
        from bluefin_v2_client import MARKET_SYMBOLS

        raw = self.run(lambda: self._client.get_orderbook({"symbol": MARKET_SYMBOLS(symbol), "limit": depth}))
        return parse_orderbook(raw, symbol)

    def funding(self, symbol: str) -> FundingRate:
        from bluefin_v2_client import MARKET_SYMBOLS

        raw = self.run(lambda: self._client.get_funding_rate(MARKET_SYMBOLS(symbol)))
        return parse_funding(raw, symbol)

    def ticker(self, symbol: str) -> dict[str, Any]:
        from bluefin_v2_client import MARKET_SYMBOLS

        raw = _check_answer(self.run(lambda: self._client.get_ticker_data(MARKET_SYMBOLS(symbol))), "ticker")
        return _numbers(raw)

    def recent_trades(self, symbol: str, count: int = 50) -> list[tuple[datetime, float, float]]:
        """(time, price, quantity) of the latest public trades."""
        from bluefin_v2_client import MARKET_SYMBOLS
        from bluefin_v2_client.enumerations import TRADE_TYPE

        params = {
            "symbol": MARKET_SYMBOLS(symbol),
            "pageSize": count,
            "pageNumber": 1,
            "traders": TRADE_TYPE.ISOLATED,
        }
        rows = _check_answer(self.run(lambda: self._client.get_market_recent_trades(params)), "recent trades")
        return [
            (
                datetime.fromtimestamp(int(t["time"]) / 1000, UTC),
                from_e18(t["price"]),
                from_e18(t["quantity"]),
            )
            for t in rows
        ]

    def market_data(self, symbol: str) -> dict[str, Any]:
        from bluefin_v2_client import MARKET_SYMBOLS

        raw = _check_answer(
            self.run(lambda: self._client.get_market_data(MARKET_SYMBOLS(symbol))), "market data"
        )
        return _numbers(raw)

    # --- socket ------------------------------------------------------------------------------------------
    async def _socket_supervisor(self) -> None:
        """Keep the socket connected and subscribed; reconnect with exponential backoff and jitter."""
        from bluefin_v2_client import MARKET_SYMBOLS

        socket = self._client.socket
        await socket.listen("RecentTrades", self._on_trades)
        await socket.listen("OrderbookUpdate", self._on_book)
        await socket.listen("disconnect", self._on_disconnect)
        delay = 0.5
        while not self._closing:
            if not self._connected():
                try:
                    await socket.open()
                    for symbol in self.symbols:
                        await socket.subscribe_global_updates_by_symbol(MARKET_SYMBOLS(symbol))
                    self.socket_connected = True
                    log_event(logger, "bluefin_socket_connected", reconnects=self.reconnects)
                    delay = 0.5
                except Exception as exc:  # the SDK raises bare Exception when it cannot connect
                    log_event(
                        logger,
                        "bluefin_socket_connect_failed",
                        logging.WARNING,
                        error=str(exc),
                        retry_in=delay,
                    )
                    await asyncio.sleep(delay * (1 + random.random() * 0.25))
                    delay = min(delay * 2, 30.0)
                    continue
            await asyncio.sleep(0.2)

    def _connected(self) -> bool:
        from bluefin_v2_client import sockets_lib

        return bool(sockets_lib.sio.connected) and self.socket_connected

    async def _on_disconnect(self) -> None:
        if self.socket_connected:
            self.reconnects += 1
        self.socket_connected = False
        log_event(logger, "bluefin_socket_disconnected", logging.WARNING)

    async def _on_book(self, data: dict[str, Any]) -> None:
        symbol = data.get("symbol")
        if symbol not in self.builders:
            return
        try:
            book = parse_orderbook(data, symbol)
        except (Temporary, BookError, ValueError, TypeError) as exc:
            log_event(logger, "bluefin_book_update_unusable", logging.WARNING, symbol=symbol, error=str(exc))
            return
        with self._lock:
            self.live_books[symbol] = book
            self.last_message_at = time.monotonic()

    async def _on_trades(self, data: dict[str, Any]) -> None:
        for trade in data.get("trades", []):
            symbol = trade.get("symbol")
            if symbol not in self.builders:
                continue
            price, quantity = from_e18(trade["price"]), from_e18(trade["quantity"])
            at = datetime.fromtimestamp(int(trade["time"]) / 1000, UTC)
            with self._lock:
                self.builders[symbol].add(price, quantity, at)
                self.last_trade_price[symbol] = price
                self.last_message_at = time.monotonic()


class BluefinFeed(ExchangeFeed):
    """Closed 1m candles of one symbol from Bluefin. The last candle of each answer is the open one and is
    held back; ``poll`` returns the candles that closed since the previous call."""

    source = "bluefin"

    def __init__(
        self,
        hub: BluefinMarketData,
        symbol: str,
        stale_after_s: float = 90.0,
        backoff_max_s: float = 60.0,
        poll_interval_s: float = 0.0,
    ) -> None:
        super().__init__(hub, symbol, MAX_CANDLES_PER_CALL, stale_after_s)
        self.hub: BluefinMarketData = hub
        self.poll_interval_s = poll_interval_s
        self._last_poll = 0.0
        self._extras_at = -EXTRAS_EVERY_S
        self._book: dict[str, float] | None = None
        self._funding: FundingRate | None = None
        self.backoff_max_s = backoff_max_s
        self._failures = 0
        self._next_try = 0.0

    def poll(self) -> list[Candle]:
        now = time.monotonic()
        if now < self._next_try or now - self._last_poll < self.poll_interval_s:
            return []
        self._last_poll = now
        try:
            batch = self.hub.candles(self.symbol, 50)
        except Temporary as exc:
            self._failures += 1
            delay = min(2**self._failures, self.backoff_max_s) * (1 + random.random() * 0.25)
            self._next_try = now + delay
            log_event(logger, "bluefin_candles_failed", logging.WARNING, symbol=self.symbol, error=str(exc),
                      retry_in_s=round(delay, 2), stale=self.stale)  # fmt: skip
            return []
        self._failures = 0
        self._last_success = time.monotonic()
        fresh = [c for c in batch[:-1] if self._last_emitted is None or c.open_time > self._last_emitted]
        if fresh:
            self._last_emitted = fresh[-1].open_time
        return fresh

    def next_candle(self) -> Candle:
        raise Temporary("the Bluefin feed is polled, not stepped")

    def derivatives(self) -> tuple[dict[str, float] | None, FundingRate | None]:
        """Order-book metrics, funding rate and open interest, refreshed at most every ``EXTRAS_EVERY_S``;
        on a temporary failure the last values are kept (and the time they were fetched says how old)."""
        now = time.monotonic()
        if now - self._extras_at >= EXTRAS_EVERY_S:
            self._extras_at = now
            try:
                live = self.hub.live_books.get(self.symbol)
                self._book = (live or self.hub.orderbook(self.symbol)).metrics()
                funding = self.hub.funding(self.symbol)
                interest = self.hub.market_data(self.symbol).get("openInterest")
                self._funding = replace(funding, open_interest=interest)
            except (Temporary, BookError) as exc:
                log_event(
                    logger, "bluefin_extras_failed", logging.WARNING, symbol=self.symbol, error=str(exc)
                )
        return self._book, self._funding

"""FakeBluefinPro: the HTTP + WebSocket server (one port for the auth, data, trade and stream hosts' paths),
run on its own event loop in a background thread, with the knobs tests use to make it misbehave."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from tests.fakes.bluefin_pro import crypto, render
from tests.fakes.bluefin_pro.engine import (
    AccountEvent,
    Engine,
    Event,
    MarketTick,
    MarketTrade,
    Order,
    now_ms,
)
from tests.fakes.bluefin_pro.market import E9, from_e9
from tests.fakes.bluefin_pro.validation import (
    ApiError,
    bad,
    check_order,
    parse_leverage,
    parse_margin,
    parse_order,
)

T = TypeVar("T")
ORDERS_PATH = "/api/v1/trade/orders"
DEFAULT_REFRESH_S = 2_592_000
WEEK_MS = 7 * 24 * 3_600_000
ACCOUNT_STREAMS = (
    "AccountOrderUpdate",
    "AccountTradeUpdate",
    "AccountAggregatedTradeUpdate",
    "AccountPositionUpdate",
    "AccountUpdate",
    "AccountTransactionUpdate",
    "AccountCommandFailureUpdate",
)
CANDLE_STREAM = re.compile(
    r"Candlestick_(1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|1w|1Mo)_(Last|Oracle|Mark|Market)"
)
PRICE_STREAMS = {
    "Oracle_Price": ("OraclePriceUpdate", "Oracle"),
    "Mark_Price": ("MarkPriceUpdate", "Mark"),
    "Market_Price": ("MarketPriceUpdate", "Market"),
}
DEPTH_STREAMS = {"Partial_Depth_5": 5, "Partial_Depth_10": 10, "Partial_Depth_20": 20}
DIFF_STREAMS = ("Diff_Depth_10_ms", "Diff_Depth_200_ms", "Diff_Depth_500_ms")
MARKET_STREAMS = ("Recent_Trade", "Ticker", "Ticker_All", *PRICE_STREAMS, *DEPTH_STREAMS, *DIFF_STREAMS)
MISBEHAVIOURS = ("429", "500", "503", "timeout", "malformed", "drop")


@dataclass
class Token:
    address: str
    expires_at: float  # wall time, seconds
    read_only: bool = False
    revoked: bool = False


@dataclass
class Failure:
    kind: str
    path: str
    times: int
    retry_after_s: float


@dataclass(eq=False)
class Stream:
    kind: str  # account | market
    ws: web.WebSocketResponse
    queue: asyncio.Queue[dict[str, Any] | None]
    address: str | None = None
    account_streams: set[str] = field(default_factory=set)
    market_streams: set[tuple[str, str]] = field(default_factory=set)  # (symbol, stream name)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"errorCode": code, "message": message}, status=status, headers=headers)


class FakeBluefinPro:
    def __init__(
        self,
        *,
        symbols: tuple[str, ...] = ("BTC-PERP", "ETH-PERP"),
        cursor: int = 300,
        starting_balance: float = 10_000.0,
        access_ttl_s: float = 300.0,
        candles_per_second: float = 0.0,
        shift_to_now: bool = False,
    ) -> None:
        self.engine = Engine(symbols, cursor, starting_balance, shift_to_now)
        self.ids_id = "0x" + secrets.token_hex(32)
        self.eds_id = "0x" + secrets.token_hex(32)
        self.contract_address = "0x" + secrets.token_hex(32)
        self.market_addresses = {s: "0x" + secrets.token_hex(32) for s in symbols}
        self.access_ttl_s = access_ttl_s
        self.candles_per_second = candles_per_second
        self.order_requests: list[dict[str, Any]] = []
        self.refusals: list[tuple[str, str]] = []
        self.logins = 0
        self.refreshes = 0
        self.fill_delay_s = 0.0
        self.hold_answer_s = 0.0
        self.refuse_streams = False
        self.stream_events: list[tuple[str, str]] = []
        self.timeout_hang_s = 120.0  # "timeout": how long a request hangs before the connection closes
        self.signed_at_window_s = 60.0  # login and signed requests: how far signedAtMillis may be from now
        self.port = 0
        self._access: dict[str, Token] = {}
        self._refresh: dict[str, Token] = {}
        self._failures: list[Failure] = []
        self._streams: set[Stream] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-bluefin-pro", daemon=True)
        self.app = web.Application(middlewares=[self._middleware])
        self._routes()

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (``port`` 0 = any free port); the base URL."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(port), self.loop).result(10)
        return self.url

    async def _start(self, port: int) -> None:
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._spawn(self._expiry_sweeper())
        if self.candles_per_second > 0:
            self._spawn(self._ticker_task())

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    async def _stop(self) -> None:
        assert self._stopping is not None
        self._stopping.set()
        await self._drop_streams()
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _running(self) -> bool:
        return self._thread.is_alive() and threading.current_thread() is not self._thread

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (all state lives there), then send what it caused."""

        def run() -> T:
            try:
                return fn()
            finally:
                self._flush()

        if not self._running():
            return run()

        async def on_loop() -> T:
            return run()

        return asyncio.run_coroutine_threadsafe(on_loop(), self.loop).result(10)

    @property
    def liquidity(self) -> dict[str, float]:
        """Per symbol: the most quantity one taker order (or one resting order per price step) can take
        now; a symbol not listed has unlimited liquidity."""
        return self.engine.liquidity

    @liquidity.setter
    def liquidity(self, value: dict[str, float]) -> None:
        self.engine.liquidity.clear()
        self.engine.liquidity.update(value)

    # --- Python API: market ----------------------------------------------------------------------------
    def advance(self, minutes: int = 1) -> None:
        """Release ``minutes`` more candles (file rows): the open candle moves on, the price follows."""
        self._call(lambda: self.engine.advance(minutes))

    def set_price(self, symbol: str, price: float) -> None:
        """Override the market price now (mark = last = price, rounded to the tick)."""
        self._call(lambda: self.engine.set_price(symbol, price))

    def price(self, symbol: str) -> float:
        return from_e9(self._call(lambda: self.engine.price(symbol)))

    # --- Python API: accounts --------------------------------------------------------------------------
    def account(self, address: str) -> dict[str, Any]:
        """Balance, positions and leverage per symbol, as plain floats (KeyError for an unknown address)."""
        return self._call(lambda: self._account_view(address.lower()))

    def _account_view(self, address: str) -> dict[str, Any]:
        engine = self.engine
        account = engine.accounts[address]
        positions = {
            s: {
                "side": p.side,
                "size": from_e9(abs(p.size)),
                "entry_price": from_e9(p.entry),
                "margin": from_e9(p.margin),
                "liquidation_price": from_e9(engine.liquidation_price(p)),
                "mark_price": from_e9(engine.price(s)),
                "unrealized_pnl": from_e9(engine.unrealized_pnl(p)),
                "leverage": from_e9(p.leverage),
                "is_isolated": p.isolated,
                "funding": from_e9(p.funding_all_time),
            }
            for s, p in account.positions.items()
        }
        return {
            "address": address,
            "balance": from_e9(account.balance),
            "margin_available": from_e9(engine.available(account)),
            "positions": positions,
            "leverage": {s: from_e9(v) for s, v in account.leverage.items()},
            "trades": len(account.trades),
            "funding_payments": len(account.funding),
        }

    def fund(self, address: str, amount: float) -> None:
        """Deposit ``amount`` USDC (negative: withdraw); creates the account if it does not exist."""
        self._call(lambda: self.engine.fund(address.lower(), amount))

    # --- Python API: orders ----------------------------------------------------------------------------
    @property
    def orders(self) -> dict[str, dict[str, Any]]:
        """orderHash -> the order's state (a snapshot)."""
        return {h: o.as_dict() for h, o in list(self.engine.orders.items())}

    def misbehave(self, kind: str, path: str = "", times: int = 1, retry_after_s: float = 1.0) -> None:
        """Answer the next ``times`` REST requests whose path starts with ``path`` badly, instead of
        handling them: 429 (Retry-After), 500, 503, timeout (hang, then close), malformed (200, not JSON),
        drop (close the connection without an answer)."""
        if kind not in MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {kind!r}; one of {MISBEHAVIOURS}")
        self._call(lambda: self._failures.append(Failure(kind, path, times, retry_after_s)))

    def drop_streams(self) -> None:
        """Close every open WebSocket now."""
        if self._running():
            asyncio.run_coroutine_threadsafe(self._drop_streams(), self.loop).result(10)

    def expire_tokens(self) -> None:
        """Every access token issued so far is refused (401) from now on; refresh tokens stay valid."""

        def revoke() -> None:
            for token in self._access.values():
                token.revoked = True

        self._call(revoke)

    def pay_funding(self, symbol: str, rate: float) -> None:
        """Settle one funding payment on every open position of ``symbol`` at the mark."""
        self._call(lambda: self.engine.pay_funding(symbol, rate))

    # --- stream dispatch -------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Send the engine's pending events to the streams subscribed to them."""
        events = self.engine.drain()
        if not events or not self._streams:
            return
        ticked: list[str] = []
        for event in events:
            self._dispatch(event, ticked)
        for symbol in ticked:
            self._send_market_state(symbol)
        if ticked and self._subscribed("", ("Ticker_All",)):
            self._to_market("", "Ticker_All", self._market_frame("", "Ticker_All"))  # type: ignore[arg-type]

    def _dispatch(self, event: Event, ticked: list[str]) -> None:
        if isinstance(event, AccountEvent):
            frame = {"event": event.event, "reason": event.reason, "payload": event.payload}
            for stream in self._streams:
                if stream.address == event.account and event.event in stream.account_streams:
                    stream.queue.put_nowait(frame)
        elif isinstance(event, MarketTrade):
            frame = {"event": "RecentTradesUpdates", "payload": {"trades": [event.trade]}}
            self._to_market(event.symbol, "Recent_Trade", frame)
        elif isinstance(event, MarketTick):
            if event.symbol not in ticked:
                ticked.append(event.symbol)
            self._send_candles(event)

    def _to_market(self, symbol: str, name: str, frame: dict[str, Any]) -> None:
        for stream in self._streams:
            if (symbol, name) in stream.market_streams:
                stream.queue.put_nowait(frame)

    def _subscribed(self, symbol: str, names: Any) -> set[str]:
        return {n for s in self._streams for (sym, n) in s.market_streams if sym == symbol and n in names}

    def _send_candles(self, tick: MarketTick) -> None:
        names = {n for s in self._streams for (sym, n) in s.market_streams if sym == tick.symbol}
        for name in sorted(names):
            match = CANDLE_STREAM.fullmatch(name)
            if match is None:
                continue
            interval = match.group(1)
            current = render.bucket_at(self.engine, tick.symbol, interval, tick.new)
            if tick.old != tick.new:
                previous = render.bucket_at(self.engine, tick.symbol, interval, tick.old)
                if previous.start != current.start:  # the candle closed: its final state, once
                    self._to_market(tick.symbol, name, self._candle_frame(tick.symbol, interval, previous))
            self._to_market(tick.symbol, name, self._candle_frame(tick.symbol, interval, current))

    @staticmethod
    def _candle_frame(symbol: str, interval: str, candle: Any) -> dict[str, Any]:
        return {"event": "CandlestickUpdate", "payload": render.candle_update(symbol, interval, candle)}

    def _send_market_state(self, symbol: str) -> None:
        for name in self._subscribed(symbol, MARKET_STREAMS):
            frame = self._market_frame(symbol, name)
            if frame is not None:
                self._to_market(symbol, name, frame)

    def _market_frame(self, symbol: str, name: str) -> dict[str, Any] | None:
        """The current state of one market stream (None for streams that only carry events)."""
        engine, at = self.engine, now_ms()
        if name == "Ticker":
            return {"event": "TickerUpdate", "payload": render.ticker(engine, symbol, at)}
        if name == "Ticker_All":
            tickers = [render.ticker(engine, s, at) for s in engine.specs]
            for ticker in tickers:
                ticker.pop("estimatedFundingRateE9")
            return {"event": "TickerAllUpdate", "payload": {"tickerAll": tickers}}
        if name in PRICE_STREAMS:
            event, source = PRICE_STREAMS[name]
            return {"event": event, "payload": render.price_update(symbol, engine.price(symbol), source, at)}
        if name in DEPTH_STREAMS:
            payload = render.partial_depth(engine, symbol, DEPTH_STREAMS[name], at)
            return {"event": "OrderbookPartialDepthUpdate", "payload": payload}
        if name in DIFF_STREAMS:
            return {"event": "OrderbookDiffDepthUpdate", "payload": render.diff_depth(engine, symbol, at)}
        match = CANDLE_STREAM.fullmatch(name)
        if match is not None:
            candle = render.bucket_at(engine, symbol, match.group(1), engine.cursor)
            return self._candle_frame(symbol, match.group(1), candle)
        return None

    # --- background tasks ------------------------------------------------------------------------------
    async def _expiry_sweeper(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            self.engine.expire_due(now_ms())
            self._flush()

    async def _ticker_task(self) -> None:
        while True:
            await asyncio.sleep(1 / self.candles_per_second)
            self.engine.advance(1)
            self._flush()

    def _later(self, delay_s: float, action: Callable[[], None]) -> None:
        def run() -> None:
            try:
                action()
            finally:
                self._flush()

        if delay_s > 0:
            self.loop.call_later(delay_s, run)
        else:
            self.loop.call_soon(run)

    # --- HTTP plumbing ---------------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        path = request.path
        rest = not path.startswith(("/ws/", "/_fake/"))
        if rest and request.method == "POST" and path == ORDERS_PATH:
            raw = await request.read()
            try:
                self.order_requests.append(json.loads(raw))
            except ValueError:
                self.order_requests.append({"_raw": raw.decode(errors="replace")})
        failure = self._take_failure(path) if rest else None
        if failure is not None:
            return await self._misbehave(request, failure)
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as error:
            if error.refused:
                self.refusals.append((path, error.message))
            return _error(error.status, error.code, error.message)
        except web.HTTPNotFound:
            return _error(404, "NOT_FOUND", f"no such path {path}")
        except web.HTTPMethodNotAllowed:
            return _error(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {path}")

    def _take_failure(self, path: str) -> Failure | None:
        for failure in self._failures:
            if failure.times > 0 and path.startswith(failure.path):
                failure.times -= 1
                if failure.times == 0:
                    self._failures.remove(failure)
                return failure
        return None

    async def _misbehave(self, request: web.Request, failure: Failure) -> web.StreamResponse:
        if failure.kind == "429":
            seconds = failure.retry_after_s
            retry_after = str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))
            return _error(429, "TOO_MANY_REQUESTS", "rate limited (fake)", {"Retry-After": retry_after})
        if failure.kind in ("500", "503"):
            return _error(int(failure.kind), "INTERNAL_ERROR", f"fake {failure.kind}")
        if failure.kind == "malformed":
            return web.Response(
                status=200, body=b"<html><body>upstream hiccup</body></html>", content_type="application/json"
            )
        if failure.kind == "timeout":
            await self._sleep(self.timeout_hang_s)
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=500)  # never reaches anyone: the connection is gone

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the fake stops meanwhile."""
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def _json(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise bad("the body is not JSON") from exc

    def _bearer(self, request: web.Request, trading: bool = False) -> Token:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise ApiError(401, "UNAUTHORIZED", "missing Authorization: Bearer <access token>")
        token = self._valid_token(header[len("Bearer ") :])
        if token is None:
            raise ApiError(401, "UNAUTHORIZED", "unknown or expired access token")
        if trading and token.read_only:
            raise ApiError(403, "FORBIDDEN", "the access token is read-only")
        return token

    def _valid_token(self, value: str) -> Token | None:
        token = self._access.get(value)
        if token is None or token.revoked or token.expires_at <= time.time():
            return None
        return token

    @staticmethod
    def _int(
        request: web.Request, name: str, default: int | None, lo: int = 0, hi: int | None = None
    ) -> int | None:
        text = request.query.get(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError as exc:
            raise bad(f"{name} {text!r} is not an integer") from exc
        if value < lo or (hi is not None and value > hi):
            raise bad(f"{name} {value} outside {lo}..{hi if hi is not None else ''}")
        return value

    def _symbol(self, request: web.Request, required: bool = True) -> str | None:
        symbol = request.query.get("symbol")
        if symbol is None or symbol == "":
            if required:
                raise bad("symbol is required")
            return None
        if symbol not in self.engine.specs:
            raise bad(f"unknown market {symbol}", "INVALID_SYMBOL")
        return symbol

    @staticmethod
    def _page(rows: list[T], limit: int, page: int) -> list[T]:
        return rows[(page - 1) * limit : page * limit]

    def _routes(self) -> None:
        r = self.app.router
        r.add_post("/auth/token", self._login_v1)
        r.add_post("/auth/v2/token", self._login_v2)
        r.add_put("/auth/token/refresh", self._refresh_token)
        r.add_get("/api/v1/account", self._get_account)
        r.add_get("/api/v1/account/trades", self._get_trades)
        r.add_get("/api/v1/account/fundingRateHistory", self._get_account_funding)
        r.add_get("/api/v1/account/transactions", self._get_transactions)
        r.add_post(ORDERS_PATH, self._post_order)
        r.add_get("/api/v1/trade/openOrders", self._get_open_orders)
        r.add_get("/api/v1/trade/standbyOrders", self._get_standby_orders)
        r.add_put("/api/v1/trade/orders/cancel", self._cancel_orders)
        r.add_put("/api/v1/trade/orders/cancel/standby", self._cancel_standby)
        r.add_put("/api/v1/trade/leverage", self._put_leverage)
        r.add_put("/api/v1/trade/adjustIsolatedMargin", self._put_margin)
        r.add_get("/v1/exchange/info", self._info)
        r.add_get("/v1/exchange/depth", self._depth)
        r.add_get("/v1/exchange/ticker", self._ticker)
        r.add_get("/v1/exchange/tickers", self._tickers)
        r.add_get("/v1/exchange/trades", self._exchange_trades)
        r.add_get("/v1/exchange/candlesticks", self._candlesticks)
        r.add_get("/v1/exchange/fundingRateHistory", self._exchange_funding)
        r.add_get("/ws/market", self._ws_market)
        r.add_get("/ws/account", self._ws_account)
        r.add_post("/_fake/advance", self._admin_advance)
        r.add_post("/_fake/price", self._admin_price)
        r.add_post("/_fake/misbehave", self._admin_misbehave)
        r.add_post("/_fake/drop-streams", self._admin_drop_streams)
        r.add_post("/_fake/funding", self._admin_funding)
        r.add_post("/_fake/fund", self._admin_fund)
        r.add_post("/_fake/expire-tokens", self._admin_expire_tokens)
        r.add_post("/_fake/knobs", self._admin_knobs)
        r.add_get("/_fake/state", self._admin_state)

    # --- auth ------------------------------------------------------------------------------------------
    async def _login_v1(self, request: web.Request) -> web.Response:
        return await self._login(request, v2=False)

    async def _login_v2(self, request: web.Request) -> web.Response:
        return await self._login(request, v2=True)

    async def _login(self, request: web.Request, v2: bool) -> web.Response:
        """Verify the signature over the raw body bytes, then read the fields."""
        raw = await request.read()
        header = request.headers.get("payloadSignature")
        if not header:
            raise bad("missing payloadSignature header", "INVALID_SIGNATURE")
        try:
            signer = crypto.verify_login(raw, header, v2)
        except crypto.SignatureError as exc:
            raise ApiError(
                400 if exc.malformed else 401, "INVALID_SIGNATURE", f"bad signature: {exc}"
            ) from exc
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise bad("the login body is not JSON") from exc
        if not isinstance(body, dict) or not {"accountAddress", "signedAtMillis", "audience"} <= body.keys():
            raise bad("the login body needs accountAddress, signedAtMillis and audience")
        if body["accountAddress"] != signer:
            raise ApiError(
                401, "INVALID_SIGNATURE", f"signer {signer} is not accountAddress {body['accountAddress']}"
            )
        if body["audience"] != "api":
            raise ApiError(403, "INVALID_AUDIENCE", f"audience {body['audience']!r} is not 'api'")
        signed_at = body["signedAtMillis"]
        if (
            not isinstance(signed_at, int)
            or abs(time.time() * 1000 - signed_at) > self.signed_at_window_s * 1000
        ):
            raise ApiError(401, "INVALID_SIGNATURE", "signedAtMillis is not within a minute of now")
        refresh_s = self._int(request, "refreshTokenValidForSeconds", DEFAULT_REFRESH_S, lo=1)
        assert refresh_s is not None
        read_only = request.query.get("readOnly", "false").lower() == "true"
        self._call(lambda: self.engine.ensure_account(signer))
        self.logins += 1
        return web.json_response(self._issue(signer, refresh_s, read_only))

    def _issue(
        self, address: str, refresh_s: int, read_only: bool, refresh: str | None = None
    ) -> dict[str, Any]:
        now = time.time()
        access = secrets.token_urlsafe(32)
        self._access[access] = Token(address, now + self.access_ttl_s, read_only)
        if refresh is None:
            refresh = secrets.token_urlsafe(32)
            self._refresh[refresh] = Token(address, now + refresh_s, read_only)
        remaining = int(self._refresh[refresh].expires_at - now)
        return {
            "accessToken": access,
            "accessTokenValidForSeconds": int(self.access_ttl_s),
            "refreshToken": refresh,
            "refreshTokenValidForSeconds": remaining,
        }

    async def _refresh_token(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        value = body.get("refreshToken") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise bad("missing refreshToken")
        token = self._refresh.get(value)
        if token is None or token.expires_at <= time.time():
            raise ApiError(401, "UNAUTHORIZED", "unknown or expired refresh token")
        self.refreshes += 1
        return web.json_response(self._issue(token.address, 0, token.read_only, refresh=value))

    # --- account data ----------------------------------------------------------------------------------
    async def _get_account(self, request: web.Request) -> web.Response:
        address = request.query.get("accountAddress", "").lower()
        if not address:
            address = self._bearer(request).address
        account = self.engine.accounts.get(address)
        if account is None:
            raise ApiError(404, "ACCOUNT_NOT_FOUND", f"no account {address}", refused=False)
        return web.json_response(render.account(self.engine, account))

    def _window(self, request: web.Request) -> tuple[int, int]:
        now = now_ms()
        end = self._int(request, "endTimeAtMillis", now)
        start = self._int(request, "startTimeAtMillis", None)
        assert end is not None
        start = end - WEEK_MS if start is None else start
        if end <= start or end - start >= 90 * 24 * 3_600_000:
            raise bad("endTimeAtMillis must be after startTimeAtMillis and less than 90 days apart")
        return start, end

    def _limit_page(self, request: web.Request, default: int, lo: int = 1) -> tuple[int, int]:
        limit = self._int(request, "limit", default, lo=lo, hi=1000) or default
        page = self._int(request, "page", 1, lo=1)
        assert page is not None
        return limit, page

    async def _get_trades(self, request: web.Request) -> web.Response:
        token = self._bearer(request)
        symbol = self._symbol(request, required=False)
        start, end = self._window(request)
        limit, page = self._limit_page(request, 500)
        kind = request.query.get("tradeType", "UNSPECIFIED")
        trades = [
            t
            for t in reversed(self.engine.accounts[token.address].trades)
            if symbol in (None, t["symbol"])
            and start <= t["executedAtMillis"] <= end
            and kind in ("UNSPECIFIED", t["tradeType"])
        ]
        return web.json_response(self._page(trades, limit, page))

    async def _get_account_funding(self, request: web.Request) -> web.Response:
        token = self._bearer(request)
        address = request.query.get("accountAddress", "").lower() or token.address
        account = self.engine.accounts.get(address)
        if account is None:
            raise ApiError(404, "ACCOUNT_NOT_FOUND", f"no account {address}", refused=False)
        start, end = self._window(request)
        limit, page = self._limit_page(request, 500)
        rows = [f for f in reversed(account.funding) if start <= f["executedAtMillis"] <= end]
        return web.json_response({"data": self._page(rows, limit, page)})

    async def _get_transactions(self, request: web.Request) -> web.Response:
        token = self._bearer(request)
        types = set(request.query.getall("types", []))
        start, end = self._window(request)
        limit, page = self._limit_page(request, 500)
        rows = [
            t
            for t in reversed(self.engine.accounts[token.address].transactions)
            if (not types or t["type"] in types) and start <= t["executedAtMillis"] <= end
        ]
        return web.json_response(self._page(rows, limit, page))

    # --- trading ---------------------------------------------------------------------------------------
    async def _post_order(self, request: web.Request) -> web.StreamResponse:
        token = self._bearer(request, trading=True)
        body = await self._json(request)
        parsed = parse_order(body, self.ids_id, token.address, self.signed_at_window_s)
        fields = parsed.signed
        check_order(parsed, self.engine.specs.get(str(fields["symbol"])))
        answer = web.json_response({"orderHash": parsed.order_hash}, status=202)
        existing = self.engine.orders.get(parsed.order_hash)
        if existing is not None:
            self.refusals.append((request.path, f"duplicate order hash {parsed.order_hash}"))
            payload = render.cancellation(
                parsed.order_hash,
                parsed.client_order_id,
                existing.symbol,
                existing.account,
                now_ms(),
                "DUPLICATE_ORDER",
                int(str(fields["quantityE9"])),
            )
            action = self._emit_cancellation(existing.account, payload)
            return await self._answer_then(request, answer, action, self.fill_delay_s)
        stamp = now_ms()
        order = Order(
            hash=parsed.order_hash,
            seq=self.engine.new_seq(),
            symbol=str(fields["symbol"]),
            account=str(fields["accountAddress"]),
            signer=parsed.signer,
            side=str(fields["side"]),
            type=parsed.type,
            price=int(str(fields["priceE9"])),
            quantity=int(str(fields["quantityE9"])),
            leverage=int(str(fields["leverageE9"])),
            isolated=bool(fields["isIsolated"]),
            salt=str(fields["salt"]),
            expires=int(str(fields["expiresAtMillis"])),
            signed_at=int(str(fields["signedAtMillis"])),
            reduce_only=parsed.reduce_only,
            post_only=parsed.post_only,
            tif=parsed.tif,
            trigger=parsed.trigger,
            stp=parsed.stp,
            client_order_id=parsed.client_order_id,
            created=stamp,
            updated=stamp,
            rejection="SIGNED_AT_TOO_OLD" if parsed.too_old else None,
        )
        self.engine.accept(order)
        return await self._answer_then(
            request, answer, lambda: self.engine.process(order.hash), self.fill_delay_s
        )

    def _emit_cancellation(self, address: str, payload: dict[str, Any]) -> Callable[[], None]:
        def emit() -> None:
            self.engine.outbox.append(AccountEvent(address, "AccountOrderUpdate", "OrderCancelled", payload))

        return emit

    async def _answer_then(
        self, request: web.Request, answer: web.Response, action: Callable[[], None], delay_s: float = 0.0
    ) -> web.StreamResponse:
        """Answer first, then act (after ``delay_s``); with hold_answer_s on POST /orders: act, then wait,
        then answer."""
        if request.path == ORDERS_PATH and self.hold_answer_s > 0:
            self._later(delay_s, action)
            await self._sleep(self.hold_answer_s)
            return answer
        await answer.prepare(request)
        await answer.write_eof()
        self._later(delay_s, action)
        return answer

    async def _get_open_orders(self, request: web.Request) -> web.Response:
        return self._list_orders(request, ("OPEN", "PARTIALLY_FILLED_OPEN"))

    async def _get_standby_orders(self, request: web.Request) -> web.Response:
        return self._list_orders(request, ("STANDBY",))

    def _list_orders(self, request: web.Request, statuses: tuple[str, ...]) -> web.Response:
        token = self._bearer(request)
        symbol = self._symbol(request, required=False)
        rows = [
            render.open_order(o)
            for o in sorted(self.engine.live.values(), key=lambda o: o.seq)
            if o.account == token.address and o.status in statuses and symbol in (None, o.symbol)
        ]
        return web.json_response(rows)

    async def _cancel_body(self, request: web.Request) -> tuple[Token, str, list[str] | None]:
        token = self._bearer(request, trading=True)
        body = await self._json(request)
        if not isinstance(body, dict) or not isinstance(body.get("symbol"), str):
            raise bad("the body needs a symbol")
        symbol = body["symbol"]
        if symbol not in self.engine.specs:
            raise bad(f"unknown market {symbol}", "INVALID_SYMBOL")
        hashes = body.get("orderHashes")
        if hashes is not None:
            if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
                raise bad("orderHashes must be a list of strings")
            if len(hashes) > 10:
                raise bad(f"at most 10 orderHashes, not {len(hashes)}")
            if not hashes:
                hashes = None
        return token, symbol, hashes

    async def _cancel_orders(self, request: web.Request) -> web.StreamResponse:
        token, symbol, hashes = await self._cancel_body(request)
        answer = web.Response(status=202)

        def cancel() -> None:
            self.engine.cancel(token.address, symbol, hashes, standby=False)

        return await self._answer_then(request, answer, cancel)

    async def _cancel_standby(self, request: web.Request) -> web.Response:
        token, symbol, hashes = await self._cancel_body(request)
        cancelled = self.engine.cancel(token.address, symbol, hashes, standby=True)
        self.loop.call_soon(self._flush)
        return web.json_response({"orderHashes": cancelled})

    async def _put_leverage(self, request: web.Request) -> web.StreamResponse:
        token = self._bearer(request, trading=True)
        command = parse_leverage(
            await self._json(request), self.ids_id, token.address, self.signed_at_window_s
        )
        self._known_symbol(command.symbol)

        def update() -> None:
            self.engine.set_leverage(command.account, command.symbol, command.amount)

        return await self._answer_then(request, web.Response(status=202), update)

    async def _put_margin(self, request: web.Request) -> web.StreamResponse:
        token = self._bearer(request, trading=True)
        command = parse_margin(await self._json(request), self.ids_id, token.address, self.signed_at_window_s)
        self._known_symbol(command.symbol)

        def adjust() -> None:
            self.engine.adjust_margin(command.account, command.symbol, command.add, command.amount)

        return await self._answer_then(request, web.Response(status=202), adjust)

    def _known_symbol(self, symbol: str) -> None:
        if symbol not in self.engine.specs:
            raise bad(f"unknown market {symbol}", "INVALID_SYMBOL")

    # --- exchange data ---------------------------------------------------------------------------------
    async def _info(self, request: web.Request) -> web.Response:
        operators = {
            k: "0x" + c * 64
            for k, c in (
                ("admin", "a"),
                ("operator", "b"),
                ("sequencer", "c"),
                ("funding", "d"),
                ("fee", "e"),
            )
        }
        return web.json_response(
            {
                "assets": [
                    {
                        "assetType": self.contract_address + "::usdc::USDC",
                        "symbol": render.ASSET,
                        "decimals": 6,
                        "weight": str(E9),
                        "marginAvailable": True,
                    }
                ],
                "contractsConfig": {
                    "edsId": self.eds_id,
                    "idsId": self.ids_id,
                    "network": "testnet",
                    "baseContractAddress": self.contract_address,
                    "currentContractAddress": self.contract_address,
                    "operators": operators,
                },
                "markets": [
                    render.market(self.engine, s, self.market_addresses[s]) for s in self.engine.specs
                ],
                "tradingGasFeeE9": "0",
                "serverTimeAtMillis": now_ms(),
                "timezone": "UTC",
            }
        )

    async def _depth(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        assert symbol is not None
        limit = self._int(request, "limit", 500, lo=0, hi=1000) or 500
        return web.json_response(render.depth(self.engine, symbol, min(limit, 20), now_ms()))

    async def _ticker(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "")
        if symbol not in self.engine.specs:
            raise ApiError(404, "MARKET_NOT_FOUND", f"no market {symbol!r}", refused=False)
        return web.json_response(render.ticker(self.engine, symbol, now_ms()))

    async def _tickers(self, request: web.Request) -> web.Response:
        return web.json_response([render.ticker(self.engine, s, now_ms()) for s in self.engine.specs])

    async def _exchange_trades(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        assert symbol is not None
        limit, page = self._limit_page(request, 500, lo=0)
        after = self._int(request, "startTimeAtMillis", None)
        until = self._int(request, "endTimeAtMillis", None)
        kind = request.query.get("tradeType", "ORDER")
        rows = [
            t
            for t in self.engine.tape[symbol]
            if (after is None or t["executedAtMillis"] > after)
            and (until is None or t["executedAtMillis"] <= until)
            and kind in ("UNSPECIFIED", t["tradeType"])
        ]
        return web.json_response(self._page(rows, limit, page))

    async def _exchange_funding(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        assert symbol is not None
        limit, page = self._limit_page(request, 100, lo=0)
        after = self._int(request, "startTimeAtMillis", None)
        until = self._int(request, "endTimeAtMillis", None)
        rows = [
            r
            for r in self.engine.funding_history(symbol)
            if (after is None or r["fundingTimeAtMillis"] > after)
            and (until is None or r["fundingTimeAtMillis"] <= until)
        ]
        return web.json_response(self._page(rows, limit, page))

    async def _candlesticks(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        assert symbol is not None
        interval = request.query.get("interval", "")
        if interval not in render.MINUTES:
            raise bad(f"interval {interval!r} is not one of {sorted(render.MINUTES)}")
        if request.query.get("type", "") not in ("Last", "Mark", "Market", "Oracle", "UNSPECIFIED"):
            raise bad("type must be Last, Mark, Market or Oracle")
        limit, page = self._limit_page(request, 50, lo=0)
        start = self._int(request, "startTimeAtMillis", None)
        end = self._int(request, "endTimeAtMillis", None)
        return web.json_response(
            [render.candle_row(interval, c) for c in self._candles(symbol, interval, start, end, limit, page)]
        )

    def _candles(
        self, symbol: str, interval: str, start: int | None, end: int | None, limit: int, page: int
    ) -> list[Any]:
        """Candles with open time in [start, end], at most up to the open one; pages count from the start
        when it is given, else back from the newest."""
        engine = self.engine
        starts = [c.start + engine.time_offset for c in engine.candles[symbol][: engine.cursor + 1]]
        last = engine.cursor if end is None else min(engine.cursor, bisect_right(starts, end) - 1)
        if last < 0:
            return []
        span = page * limit * render.MINUTES[interval]
        if start is not None:
            first = bisect_left(starts, start)
            if first > last:
                return []
            rows = render.candles_between(engine, symbol, interval, first, min(last, first + span))
            rows = [c for c in rows if c.start >= start and (end is None or c.start <= end)]
            return self._page(rows, limit, page)
        rows = render.candles_between(engine, symbol, interval, max(0, last - span), last)
        rows = [c for c in rows if end is None or c.start <= end]
        newest_first = rows[::-1][(page - 1) * limit : page * limit]
        return newest_first[::-1]

    # --- streams ---------------------------------------------------------------------------------------
    async def _ws_market(self, request: web.Request) -> web.StreamResponse:
        return await self._ws(request, "market", None)

    async def _ws_account(self, request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization")
        address = None
        if header is not None:
            token = self._valid_token(header.removeprefix("Bearer "))
            if token is None:
                self.refusals.append((request.path, "invalid access token on the account stream"))
                return _error(401, "UNAUTHORIZED", "unknown or expired access token")
            address = token.address
        return await self._ws(request, "account", address)

    async def _ws(self, request: web.Request, kind: str, address: str | None) -> web.StreamResponse:
        if self.refuse_streams:
            return _error(503, "UNAVAILABLE", "streams are refused (fake)")
        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        stream = Stream(kind, ws, asyncio.Queue(), address)
        self._streams.add(stream)
        writer = asyncio.ensure_future(self._writer(stream))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_message(stream, message.data)
                    if stream.kind == "account" and stream.address is None:
                        break  # the subscription carried no valid token
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self._streams.discard(stream)
            stream.queue.put_nowait(None)
            await writer
            await ws.close()
        return ws

    async def _writer(self, stream: Stream) -> None:
        while True:
            frame = await stream.queue.get()
            if frame is None or stream.ws.closed:
                return
            try:
                await stream.ws.send_str(json.dumps(frame))
            except ConnectionError:
                return
            if "event" in frame:
                self.stream_events.append((stream.kind, frame["event"]))

    def _ack(self, stream: Stream, success: bool, message: str) -> None:
        stream.queue.put_nowait({"success": success, "message": message})

    def _on_message(self, stream: Stream, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return self._ack(stream, False, "the message is not JSON")
        if not isinstance(message, dict) or message.get("method") not in ("Subscribe", "Unsubscribe"):
            return self._ack(stream, False, "method must be Subscribe or Unsubscribe")
        streams = message.get("dataStreams")
        if not isinstance(streams, list):
            return self._ack(stream, False, "dataStreams must be a list")
        if stream.kind == "account":
            return self._on_account_message(stream, message, streams)
        return self._on_market_message(stream, message["method"], streams)

    def _on_account_message(self, stream: Stream, message: dict[str, Any], streams: list[Any]) -> None:
        if stream.address is None:
            token = self._valid_token(str(message.get("authToken", "")))
            if token is None:
                self.refusals.append(("/ws/account", "no valid access token (header or authToken)"))
                return self._ack(stream, False, "authentication required: Authorization header or authToken")
            stream.address = token.address
        unknown = [s for s in streams if s not in ACCOUNT_STREAMS]
        if unknown:
            return self._ack(stream, False, f"unknown account streams {unknown}")
        self._ack(stream, True, f"{message['method']}d to {', '.join(streams)}")
        if message["method"] == "Subscribe":
            stream.account_streams.update(streams)
        else:
            stream.account_streams.difference_update(streams)
        return None

    def _on_market_message(self, stream: Stream, method: str, streams: list[Any]) -> None:
        wanted: list[tuple[str, str]] = []
        for entry in streams:
            if not isinstance(entry, dict) or not isinstance(entry.get("streams"), list):
                return self._ack(stream, False, "each dataStreams entry needs symbol and streams")
            symbol = entry.get("symbol", "")
            for name in entry["streams"]:
                known = name in MARKET_STREAMS or CANDLE_STREAM.fullmatch(str(name))
                if not known:
                    return self._ack(stream, False, f"unknown market stream {name!r}")
                symbol_ok = symbol == "" if name == "Ticker_All" else symbol in self.engine.specs
                if not symbol_ok:
                    return self._ack(stream, False, f"unknown market {symbol!r} for {name}")
                wanted.append((symbol, name))
        self._ack(stream, True, f"{method}d to {len(wanted)} market streams")
        if method == "Unsubscribe":
            stream.market_streams.difference_update(wanted)
            return None
        new = [w for w in wanted if w not in stream.market_streams]
        stream.market_streams.update(new)
        for symbol, name in new:  # the current state of each new stream, after the acknowledgement
            frame = self._market_frame(symbol, name)
            if frame is not None:
                stream.queue.put_nowait(frame)
        return None

    async def _drop_streams(self) -> None:
        for stream in list(self._streams):
            await stream.ws.close(code=1001, message=b"dropped by the fake")

    # --- admin (not Bluefin's API) ---------------------------------------------------------------------
    async def _admin_body(self, request: web.Request) -> dict[str, Any]:
        body = await self._json(request) if request.can_read_body else {}
        if not isinstance(body, dict):
            raise bad("the body must be a JSON object")
        return body

    async def _admin_advance(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        self.advance(int(body.get("minutes", 1)))
        return web.json_response(self._prices())

    async def _admin_price(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        self.set_price(str(body["symbol"]), float(body["price"]))
        return web.json_response(self._prices())

    async def _admin_misbehave(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        try:
            self.misbehave(
                str(body["kind"]),
                str(body.get("path", "")),
                int(body.get("times", 1)),
                float(body.get("retry_after_s", 1.0)),
            )
        except ValueError as exc:
            raise bad(str(exc)) from exc
        return web.json_response({"ok": True})

    async def _admin_drop_streams(self, request: web.Request) -> web.Response:
        count = len(self._streams)
        await self._drop_streams()
        return web.json_response({"dropped": count})

    async def _admin_funding(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        self.pay_funding(str(body["symbol"]), float(body["rate"]))
        return web.json_response({"ok": True})

    async def _admin_fund(self, request: web.Request) -> web.Response:
        body = await self._admin_body(request)
        self.fund(str(body["address"]), float(body["amount"]))
        return web.json_response(self._account_view(str(body["address"]).lower()))

    async def _admin_expire_tokens(self, request: web.Request) -> web.Response:
        self.expire_tokens()
        return web.json_response({"ok": True})

    async def _admin_knobs(self, request: web.Request) -> web.Response:
        """Set fill_delay_s, hold_answer_s, refuse_streams, liquidity ({symbol: quantity or null})."""
        body = await self._admin_body(request)
        for name in ("fill_delay_s", "hold_answer_s"):
            if name in body:
                setattr(self, name, float(body[name]))
        if "refuse_streams" in body:
            self.refuse_streams = bool(body["refuse_streams"])
        for symbol, quantity in body.get("liquidity", {}).items():
            if quantity is None:
                self.liquidity.pop(symbol, None)
            else:
                self.liquidity[symbol] = float(quantity)
        return web.json_response(
            {
                "fill_delay_s": self.fill_delay_s,
                "hold_answer_s": self.hold_answer_s,
                "refuse_streams": self.refuse_streams,
                "liquidity": self.liquidity,
            }
        )

    async def _admin_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "cursor": self.engine.cursor,
                "prices": self._prices(),
                "orders": self.orders,
                "accounts": {a: self._account_view(a) for a in self.engine.accounts},
                "order_requests": len(self.order_requests),
                "refusals": self.refusals,
                "logins": self.logins,
                "refreshes": self.refreshes,
                "ids_id": self.ids_id,
                "streams": len(self._streams),
            }
        )

    def _prices(self) -> dict[str, float]:
        return {s: from_e9(self.engine.price(s)) for s in self.engine.specs}

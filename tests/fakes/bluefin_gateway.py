"""A fake Bluefin gateway: a real aiohttp + socket.io server on 127.0.0.1 serving the endpoints
bluefin-v2-client calls, from the real data in ../shared/data, and able to misbehave on request.

Prices and sizes travel as 1e18 fixed-point strings, as Bluefin sends them. Candles are served in file
order: the gateway's "present" is a cursor into the real BTC month; ``advance(n)`` releases n more
minutes; the last candle of every answer is the still-open one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import socketio
from aiohttp import web

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
E18 = 10**18
PERPETUAL_ID = "0x" + "b" * 64


def e18(value: float) -> str:
    """Exact 1e18 fixed point of the decimal the value prints as (as Bluefin sends prices)."""
    return str(int(Decimal(repr(float(value))) * E18))


@dataclass
class Failure:
    status: int | None  # an HTTP error status, or None to hang
    times: int
    hang_s: float = 0.0


class FakeBluefinGateway:
    def __init__(self, cursor: int = 300) -> None:
        frame = pd.read_csv(DATA / "btc-perp-2022-01_1m.csv")
        frame["ms"] = pd.to_datetime(frame["timestamp"], utc=True).astype("int64") // 1000
        self.candles = frame[["ms", "open", "high", "low", "close", "volume"]].to_numpy()
        self.cursor = cursor  # index of the still-open candle
        self.failures: dict[str, list[Failure]] = defaultdict(list)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.funding_rate = 0.0001
        self.token = "fake-bluefin-token"
        self.users: set[str] = set()
        self.public_keys: set[bytes] = set()
        self.orders: dict[str, dict[str, Any]] = {}
        self.position: dict[str, tuple[float, float]] = {}
        self.leverage: dict[str, float] = {}
        self.dms_resets: list[dict[str, Any]] = []
        self.drop_orders = 0
        self.hang_after_accept_s = 0.0
        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
        self.subscriptions: dict[str, set[str]] = defaultdict(set)
        self.app = web.Application(middlewares=[self._middleware])
        self.sio.attach(self.app)
        self._routes()
        self._socket_handlers()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self.url

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def reset(self, cursor: int = 300) -> None:
        """Back to a well-behaved gateway at ``cursor`` (between tests sharing one gateway)."""
        self.cursor = cursor
        self.failures.clear()
        self.requests.clear()
        self.orders.clear()
        self.position.clear()
        self.drop_orders = 0
        self.hang_after_accept_s = 0.0

    def stop(self) -> None:
        if self._runner is not None:
            self.drop_sockets()
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def network(self) -> dict[str, str]:
        return {
            "url": self.url, "apiGateway": self.url, "socketURL": self.url, "dmsURL": self.url,
            "webSocketURL": self.url.replace("http", "ws"), "onboardingUrl": self.url, "UUID": "",
        }  # fmt: skip

    # --- test controls ---------------------------------------------------------------------------------
    def fail(self, path: str, status: int, times: int = 1) -> None:
        self.failures[path].append(Failure(status, times))

    def hang(self, path: str, seconds: float, times: int = 1) -> None:
        self.failures[path].append(Failure(None, times, seconds))

    def advance(self, minutes: int = 1) -> None:
        self.cursor = min(self.cursor + minutes, len(self.candles) - 1)

    def emit(self, event: str, data: Any, room: str | None = None) -> None:
        asyncio.run_coroutine_threadsafe(self.sio.emit(event, data, room=room), self.loop).result(5)

    def emit_trade(self, symbol: str, price: float, quantity: float, at_ms: int | None = None) -> None:
        trade = {"symbol": symbol, "price": e18(price), "quantity": e18(quantity), "side": "BUY",
                 "time": at_ms if at_ms is not None else int(time.time() * 1000)}  # fmt: skip
        self.emit("RecentTrades", {"trades": [trade]}, room=f"globalUpdatesRoom:{symbol}")

    def emit_book(
        self, symbol: str, bids: list[tuple[float, float]], asks: list[tuple[float, float]]
    ) -> None:
        data = {
            "symbol": symbol,
            "bids": [[e18(p), e18(q)] for p, q in bids],
            "asks": [[e18(p), e18(q)] for p, q in asks],
        }
        self.emit("OrderbookUpdate", data, room=f"globalUpdatesRoom:{symbol}")

    def drop_sockets(self) -> None:
        async def _drop() -> None:
            for sid in list(self.sio.manager.get_participants("/", None)):
                await self.sio.disconnect(sid[0] if isinstance(sid, tuple) else sid)

        asyncio.run_coroutine_threadsafe(_drop(), self.loop).result(5)

    def connected_clients(self) -> int:
        return len(list(self.sio.manager.get_participants("/", None)))

    # --- HTTP ------------------------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/socket.io"):
            self.requests.append((request.path, dict(request.query)))
            queue = self.failures.get(request.path)
            if queue:
                failure = queue[0]
                failure.times -= 1
                if failure.times <= 0:
                    queue.pop(0)
                if failure.status is None:
                    await asyncio.sleep(failure.hang_s)
                else:
                    return web.json_response(
                        {"error": {"code": failure.status, "message": "fake failure"}}, status=failure.status
                    )
        return await handler(request)  # type: ignore[no-any-return]

    def _routes(self) -> None:
        r = self.app.router
        r.add_get("/marketData/contractAddresses", self._contracts)
        r.add_get("/candlestickData", self._candles)
        r.add_get("/orderbook", self._orderbook)
        r.add_get("/fundingRate", self._funding)
        r.add_get("/marketData", self._market_data)
        r.add_get("/ticker", self._ticker)
        r.add_get("/recentTrades", self._recent_trades)
        r.add_post("/authorize", self._authorize)
        r.add_post("/orders", self._post_order)
        r.add_get("/orders", self._get_orders)
        r.add_delete("/orders/hash", self._cancel_orders)
        r.add_get("/userPosition", self._positions)
        r.add_get("/account", self._account)
        r.add_post("/account/adjustLeverage", self._adjust_leverage)
        r.add_post("/dms-countdown", self._dms)

    # --- the account side ----------------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.token}"

    async def _authorize(self, request: web.Request) -> web.Response:
        form = await request.post()
        signature = str(form.get("signature", ""))
        if len(signature) < 130 or not form.get("userAddress"):
            return web.json_response(
                {"error": {"code": 401, "message": "bad onboarding signature"}}, status=401
            )
        self.users.add(str(form["userAddress"]))
        return web.json_response({"token": self.token})

    def verify_order(self, form: Any) -> str | None:
        """The order's hash if its signature verifies with the public key it carries, else None."""
        from bluefin_v2_client.order_signer import OrderSigner
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        signature = str(form["orderSignature"])
        signature_hex, public_key = signature[:128], base64.b64decode(signature[129:])
        order = {
            "price": int(form["price"]), "quantity": int(form["quantity"]), "leverage": int(form["leverage"]),
            "salt": int(form["salt"]), "expiration": int(form["expiration"]), "maker": str(form["userAddress"]),
            "market": PERPETUAL_ID, "ioc": form.get("timeInForce") == "IOC",
            "postOnly": form.get("postOnly") == "True", "reduceOnly": form.get("reduceOnly") == "True",
            "isBuy": form["side"] == "BUY", "orderbookOnly": form.get("orderbookOnly") == "True",
        }  # fmt: skip
        serialized = OrderSigner().get_serialized_order(order)  # type: ignore[arg-type]
        digest = hashlib.sha256(serialized.hex().encode()).digest()
        try:
            VerifyKey(public_key).verify(digest, bytes.fromhex(signature_hex))
        except (BadSignatureError, ValueError):
            return None
        self.public_keys.add(public_key)
        return "0x" + hashlib.sha256(serialized).hexdigest()

    async def _post_order(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": {"code": 401, "message": "unauthorized"}}, status=401)
        form = await request.post()
        order_hash = self.verify_order(form)
        if order_hash is None:
            return web.json_response(
                {"error": {"code": 400, "message": "invalid order signature"}}, status=400
            )
        order = {
            "hash": order_hash, "clientId": str(form["clientId"]), "symbol": str(form["symbol"]),
            "side": str(form["side"]), "orderType": str(form["orderType"]), "price": str(form["price"]),
            "quantity": str(form["quantity"]), "leverage": str(form["leverage"]),
            "reduceOnly": form.get("reduceOnly") == "True", "filledQty": "0", "avgFillPrice": "0",
            "orderStatus": "OPEN", "createdAt": int(time.time() * 1000), "fee": "0",
        }  # fmt: skip
        if self.drop_orders > 0:  # answers as if accepted, but the order never reaches the book
            self.drop_orders -= 1
            return web.json_response(order)
        self.orders[order_hash] = order
        if order["orderType"] == "MARKET":
            self._fill(order)
        if self.hang_after_accept_s:
            await asyncio.sleep(self.hang_after_accept_s)
        return web.json_response(order)

    def _fill(self, order: dict[str, Any]) -> None:
        price = float(self.candles[self.cursor][4])
        quantity = int(order["quantity"]) / E18
        side = 1 if order["side"] == "BUY" else -1
        held, entry = self.position.get(order["symbol"], (0.0, 0.0))
        new = held + side * quantity
        if held == 0 or (held > 0) == (side > 0):
            entry = (abs(held) * entry + quantity * price) / abs(new)
        elif abs(new) > 1e-12 and (new > 0) != (held > 0):
            entry = price
        self.position[order["symbol"]] = (new, entry if abs(new) > 1e-12 else 0.0)
        order.update(orderStatus="FILLED", filledQty=order["quantity"], avgFillPrice=e18(price),
                     fee=e18(quantity * price * 0.0005))  # fmt: skip

    async def _get_orders(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": {"code": 401, "message": "unauthorized"}}, status=401)
        symbol = request.query.get("symbol")
        return web.json_response([o for o in self.orders.values() if symbol in (None, o["symbol"])])

    async def _cancel_orders(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": {"code": 401, "message": "unauthorized"}}, status=401)
        form = await request.post()
        hashes = form.getall("orderHashes", [])
        cancelled = []
        for order_hash in hashes:
            order = self.orders.get(str(order_hash))
            if order is not None and order["orderStatus"] in ("OPEN", "PARTIAL_FILLED"):
                order["orderStatus"] = "CANCELLED"
                cancelled.append(order_hash)
        return web.json_response({"message": "cancelled", "data": {"acceptedForCancelling": cancelled}})

    async def _positions(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": {"code": 401, "message": "unauthorized"}}, status=401)
        rows = [
            {"symbol": s, "side": "BUY" if q > 0 else "SELL", "quantity": e18(abs(q)), "avgEntryPrice": e18(p),
             "leverage": e18(self.leverage.get(s, 3.0)), "margin": e18(abs(q) * p / self.leverage.get(s, 3.0)),
             "liquidationPrice": "0"}
            for s, (q, p) in self.position.items() if abs(q) > 1e-12
        ]  # fmt: skip
        symbol = request.query.get("symbol")
        if symbol:
            matching = [r for r in rows if r["symbol"] == symbol]
            return web.json_response(matching[0] if matching else {})
        return web.json_response(rows)

    async def _account(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": {"code": 401, "message": "unauthorized"}}, status=401)
        return web.json_response({"walletBalance": e18(10_000.0), "accountValue": e18(10_000.0),
                                  "freeCollateral": e18(9_000.0), "totalPositionMargin": e18(1_000.0),
                                  "totalUnrealizedProfit": e18(0.0)})  # fmt: skip

    async def _adjust_leverage(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.leverage[str(form["symbol"])] = int(form["leverage"]) / E18
        return web.json_response({"success": True})

    async def _dms(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.dms_resets.append(body)
        return web.json_response(
            {"acceptedToReset": [c["symbol"] for c in body.get("countDowns", [])], "failedReset": []}
        )

    async def _contracts(self, request: web.Request) -> web.Response:
        objects = {name: {"id": f"0x{i:064x}", "dataType": "0x2::coin::USDC"} for i, name in enumerate(
            ["SubAccounts", "BankTable", "package", "Bank", "Currency", "Sequencer"], start=1)}  # fmt: skip
        markets = {
            "BTC-PERP": {"Perpetual": {"id": PERPETUAL_ID}, "PriceOracle": {"id": "0x" + "c" * 64},
                         "PositionsTable": {"id": "0x" + "d" * 64}},
        }  # fmt: skip
        return web.json_response({"auxiliaryContractsAddresses": {"objects": objects}, **markets})

    def _candle_row(self, index: int) -> list[Any]:
        ms, o, h, low, c, v = self.candles[index]
        start = int(ms)
        return [start, e18(o), e18(h), e18(low), e18(c), start + 59_999, e18(v), e18(v * c), 10]

    async def _candles(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("symbol") != "BTC-PERP" or query.get("interval") != "1m":
            return web.json_response(
                {"error": {"code": 400, "message": "unsupported symbol/interval"}}, status=400
            )
        limit = min(int(query.get("limit", 50)), 1000)
        last = self.cursor
        if "endTime" in query:
            end = int(query["endTime"])
            last = min(last, int((self.candles[:, 0] <= end).sum()) - 1)
        first = 0
        if "startTime" in query:
            first = int((self.candles[:, 0] < int(query["startTime"])).sum())
            rows = list(range(first, min(first + limit, last + 1)))
        else:
            rows = list(range(max(first, last - limit + 1), last + 1))
        return web.json_response([self._candle_row(i) for i in rows])

    async def _orderbook(self, request: web.Request) -> web.Response:
        book = pd.read_csv(DATA / "btcusdt-perp_book-snapshot-5.csv").iloc[0]
        shift = float(self.candles[self.cursor][4]) - float(book["asks[0].price"])
        asks = [[e18(book[f"asks[{i}].price"] + shift), e18(book[f"asks[{i}].amount"])] for i in range(5)]
        bids = [[e18(book[f"bids[{i}].price"] + shift), e18(book[f"bids[{i}].amount"])] for i in range(5)]
        return web.json_response({"symbol": request.query.get("symbol"), "asks": asks, "bids": bids,
                                  "askOrders": asks, "bidOrders": bids})  # fmt: skip

    async def _funding(self, request: web.Request) -> web.Response:
        now = int(self.candles[self.cursor][0])
        return web.json_response({"symbol": request.query.get("symbol"), "fundingRate": e18(self.funding_rate),
                                  "time": now, "nextFundingTime": now + 3_600_000})  # fmt: skip

    async def _market_data(self, request: web.Request) -> web.Response:
        close = float(self.candles[self.cursor][4])
        return web.json_response({"symbol": "BTC-PERP", "marketPrice": e18(close), "indexPrice": e18(close),
                                  "lastFundingRate": e18(self.funding_rate), "openInterest": e18(1234.5)})  # fmt: skip

    async def _ticker(self, request: web.Request) -> web.Response:
        return await self._market_data(request)

    async def _recent_trades(self, request: web.Request) -> web.Response:
        close = float(self.candles[self.cursor][4])
        return web.json_response([{"symbol": "BTC-PERP", "price": e18(close), "quantity": e18(0.01), "side": "BUY",
                                   "time": int(self.candles[self.cursor][0])}])  # fmt: skip

    # --- socket.io -------------------------------------------------------------------------------------
    def _socket_handlers(self) -> None:
        @self.sio.on("SUBSCRIBE")
        async def subscribe(sid: str, rooms: list[dict[str, str]]) -> dict[str, bool]:
            for room in rooms:
                name = (
                    f"{room['e']}Room:{room['p']}"
                    if not room["e"].endswith("Room")
                    else f"{room['e']}:{room['p']}"
                )
                await self.sio.enter_room(sid, name)
                self.subscriptions[sid].add(name)
            return {"success": True}

        @self.sio.on("UNSUBSCRIBE")
        async def unsubscribe(sid: str, rooms: list[dict[str, str]]) -> dict[str, bool]:
            return {"success": True}

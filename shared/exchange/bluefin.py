"""``BluefinExchange``: the Exchange port on bluefin-v2-client 4.2.13 (installed --no-deps).

Placement is never retried: a timeout, a dropped connection or a 5xx is ``UnknownOutcome`` and the order
is found again by its client id (the SDK sends it as ``"bluefin-v2-client-python: <id>"``). A 429 means
the gateway refused before looking at the order: ``Rejected``. Reads and cancels raise ``Temporary`` and
are retried by their callers. Bluefin's order statuses map onto ours; an order's fills are reported as
one cumulative fill per state (``<hash>:<filled quantity>``), which the executor turns into increments.
Not supported by this client (refused with ``Rejected``): TAKE_PROFIT orders and FOK.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from shared.errors import Fatal, Rejected, Temporary, UnknownOutcome
from shared.exchange.base import Account, Exchange, OrderRef
from shared.logs import log_event
from shared.marketdata.bluefin import BluefinMarketData, from_e18, parse_funding, parse_orderbook
from shared.marketdata.funding import FundingRate
from shared.marketdata.orderbook import OrderBook
from shared.models import Fill, OrderRequest, OrderResult, OrderStatus, OrderType, Position, Side, TimeInForce

logger = logging.getLogger(__name__)
T = TypeVar("T")
CLIENT_ID_PREFIX = "bluefin-v2-client-python: "
STATUSES = {
    "OPEN": OrderStatus.OPEN, "PENDING": OrderStatus.OPEN, "STAND_BY": OrderStatus.OPEN,
    "STAND_BY_PENDING": OrderStatus.OPEN, "PARTIAL_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED, "CANCELLING": OrderStatus.OPEN, "CANCELLED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.CANCELED, "REJECTED": OrderStatus.REJECTED,
}  # fmt: skip


def _error_of(raw: Any) -> tuple[int, str] | None:
    if isinstance(raw, dict) and "error" in raw:
        error = raw["error"]
        if isinstance(error, dict):
            return int(error.get("code", 0) or 0), str(error.get("message", error))
        return 0, str(error)
    if hasattr(raw, "status") and not isinstance(raw, dict | list):  # the SDK's answer to a 503
        return int(raw.status), "service unavailable"
    return None


class BluefinExchange(Exchange):
    name = "bluefin"

    def __init__(
        self, network: dict[str, str], private_key: str, symbols: tuple[str, ...], timeout_s: float = 10.0
    ) -> None:
        self.symbols = symbols
        self._private_key = private_key
        self._sdk = BluefinMarketData(network, symbols, request_timeout_s=timeout_s)
        self._client: Any = None
        self._marks: dict[str, tuple[float, float]] = {}

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Onboard (sign in with the key, get the auth token). A refused key is Fatal."""
        self._sdk.start(with_socket=False)
        try:
            self._run(self._onboard)
        except SystemError as exc:  # the SDK's way of saying the gateway refused the signature
            raise Fatal(f"Bluefin refused the account: {exc}") from exc
        self._client = self._sdk._client

    async def _onboard(self) -> None:
        from bluefin_v2_client import BluefinClient

        client = BluefinClient(True, self._sdk.network, self._private_key)
        await client.init(True)
        await self._sdk._client.apis.close_session()
        await self._sdk._client.dms_api.close_session()
        self._sdk._client = client

    def stop(self) -> None:
        self._sdk.stop()

    def _run(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return self._sdk.run(factory)

    # --- orders --------------------------------------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> OrderResult:
        from bluefin_v2_client import MARKET_SYMBOLS, ORDER_SIDE, ORDER_TYPE
        from bluefin_v2_client.enumerations import TIME_IN_FORCE

        if request.order_type is OrderType.TAKE_PROFIT:
            raise Rejected(
                "TAKE_PROFIT orders are not supported by bluefin-v2-client; use a reduce-only LIMIT"
            )
        if request.time_in_force is TimeInForce.FOK:
            raise Rejected("fill-or-kill is not supported by Bluefin")
        params: dict[str, Any] = {
            "symbol": MARKET_SYMBOLS(request.symbol),
            "price": Decimal(str(request.price or 0)),
            "quantity": Decimal(str(request.quantity)),
            "side": ORDER_SIDE(request.side.value),
            "orderType": ORDER_TYPE(request.order_type.value),
            "leverage": int(request.leverage),
            "reduceOnly": request.reduce_only,
            "postOnly": request.post_only,
            "timeInForce": TIME_IN_FORCE.IMMEDIATE_OR_CANCEL
            if request.time_in_force is TimeInForce.IOC
            else TIME_IN_FORCE.GOOD_TILL_TIME,
        }
        if request.trigger_price is not None:
            params["triggerPrice"] = Decimal(str(request.trigger_price))
        signed = self._client.create_signed_order(params)
        signed["clientId"] = request.client_id
        try:
            raw = self._run(lambda: self._client.post_signed_order(signed))
        except Temporary as exc:
            raise UnknownOutcome(f"placing {request.client_id}: {exc}") from exc
        error = _error_of(raw)
        if error is not None:
            code, message = error
            if code == 429:
                raise Rejected(f"rate limited, not placed: {message}")
            if code >= 500 or code == 0:
                raise UnknownOutcome(f"placing {request.client_id}: {code} {message}")
            raise Rejected(f"{code} {message}")
        return self._result(raw)

    def _result(self, raw: dict[str, Any]) -> OrderResult:
        client_id = str(raw.get("clientId", "")).removeprefix(CLIENT_ID_PREFIX)
        filled = from_e18(raw.get("filledQty", "0"))
        average = from_e18(raw.get("avgFillPrice", "0")) if filled else None
        side = Side(raw["side"])
        fills: tuple[Fill, ...] = ()
        if filled and average:
            at = datetime.fromtimestamp(int(raw.get("createdAt", 0)) / 1000, UTC)
            trade_id = f"{raw['hash']}:{raw.get('filledQty')}"
            fee = from_e18(raw.get("fee", "0"))
            fills = (
                Fill(trade_id, client_id, raw["symbol"], side, filled, average, fee, at, cumulative=True),
            )
        order_type = str(raw.get("orderType", ""))
        return OrderResult(
            client_id=client_id,
            exchange_id=str(raw["hash"]),
            status=STATUSES.get(str(raw.get("orderStatus")), OrderStatus.OPEN),
            filled_quantity=filled,
            average_price=average,
            fills=fills,
            symbol=str(raw["symbol"]),
            side=side,
            quantity=from_e18(raw.get("quantity", "0")),
            order_type=OrderType(order_type) if order_type in OrderType.__members__ else None,
        )

    def _orders(self, symbol: str) -> list[dict[str, Any]]:
        from bluefin_v2_client import MARKET_SYMBOLS

        raw = self._run(lambda: self._client.get_orders({"symbol": MARKET_SYMBOLS(symbol)}))
        error = _error_of(raw)
        if error is not None or not isinstance(raw, list):
            raise Temporary(f"Bluefin orders: {error or 'unexpected answer'}")
        return raw

    def _find(self, client_id: str) -> dict[str, Any] | None:
        wanted = f"{CLIENT_ID_PREFIX}{client_id}"
        for symbol in self.symbols:
            for order in self._orders(symbol):
                if order.get("clientId") == wanted:
                    return order
        return None

    def get_order(self, client_id: str, ref: OrderRef | None = None) -> OrderResult | None:
        raw = self._find(client_id)
        return None if raw is None else self._result(raw)

    def open_orders(self, symbol: str | None = None) -> list[OrderResult]:
        results = []
        for market in [symbol] if symbol else self.symbols:
            results += [self._result(o) for o in self._orders(market)]
        return [r for r in results if r.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)]

    def cancel_order(self, client_id: str, ref: OrderRef | None = None) -> OrderResult:
        from bluefin_v2_client import MARKET_SYMBOLS

        raw = self._find(client_id)
        if raw is None:
            raise Rejected(f"unknown order {client_id}")
        request = self._client.create_signed_cancel_orders(MARKET_SYMBOLS(raw["symbol"]), [raw["hash"]])
        answer = self._run(lambda: self._client.post_cancel_order(request))
        error = _error_of(answer)
        if error is not None:
            raise Temporary(f"cancel {client_id}: {error[1]}")
        accepted = answer.get("data", {}).get("acceptedForCancelling", [])
        if raw["hash"] not in accepted:
            raise Rejected(f"order {client_id} is not open")
        cancelled = self.get_order(client_id)
        assert cancelled is not None
        return cancelled

    # --- account -------------------------------------------------------------------------------------------
    def positions(self) -> list[Position]:
        from bluefin_v2_client import MARKET_SYMBOLS

        found = []
        for symbol in self.symbols:
            query = {"symbol": MARKET_SYMBOLS(symbol)}
            raw = self._run(lambda q=query: self._client.get_user_position(q))  # type: ignore[misc]
            if _error_of(raw) is not None:
                raise Temporary(f"Bluefin position {symbol}: {_error_of(raw)}")
            if raw:
                sign = 1 if raw.get("side") == "BUY" else -1
                found.append(
                    Position(symbol, sign * from_e18(raw["quantity"]), from_e18(raw["avgEntryPrice"]))
                )
        return found

    def account(self) -> Account:
        raw = self._run(lambda: self._client.get_user_account_data())
        if _error_of(raw) is not None:
            raise Temporary(f"Bluefin account: {_error_of(raw)}")
        balance = from_e18(raw.get("walletBalance", "0"))
        equity = from_e18(raw.get("accountValue", "0"))
        return Account(balance, equity, from_e18(raw.get("totalUnrealizedProfit", "0")), 0.0,
                       from_e18(raw.get("totalPositionMargin", "0")))  # fmt: skip

    def set_leverage(self, symbol: str, leverage: float) -> None:
        from bluefin_v2_client import MARKET_SYMBOLS

        if any(p.symbol == symbol for p in self.positions()):
            # with a position the SDK adjusts on-chain through the Sui RPC; keep it simple and explicit
            raise Rejected("change leverage with the position flat (as on the paper exchange)")
        answer = self._run(lambda: self._client.adjust_leverage(MARKET_SYMBOLS(symbol), int(leverage)))
        if answer is not True and (_error_of(answer) is not None or not isinstance(answer, dict)):
            raise Rejected(f"Bluefin did not accept leverage {leverage} for {symbol}: {_error_of(answer)}")

    def refresh_cancel_on_disconnect(self, countdown_ms: int = 60_000) -> list[str]:
        """Push the dead-man switch forward: if the engine stops calling this, Bluefin cancels our orders."""
        from bluefin_v2_client import MARKET_SYMBOLS

        body = {
            "countDowns": [
                {"symbol": MARKET_SYMBOLS(s).value, "countDown": countdown_ms} for s in self.symbols
            ]
        }
        answer = self._run(lambda: self._client.reset_cancel_on_disconnect_timer(body))
        return list(answer.get("acceptedToReset", [])) if isinstance(answer, dict) else []

    def funding_rate(self, symbol: str) -> FundingRate | None:
        return parse_funding(self._run(lambda: self._client.get_funding_rate(_symbol(symbol))), symbol)

    def orderbook(self, symbol: str) -> OrderBook | None:
        raw = self._run(lambda: self._client.get_orderbook({"symbol": _symbol(symbol), "limit": 20}))
        return parse_orderbook(raw, symbol)

    def mark_price(self, symbol: str) -> float | None:
        cached = self._marks.get(symbol)
        if cached and time.monotonic() - cached[1] < 1.0:
            return cached[0]
        try:
            price = self._sdk.market_data(symbol).get("marketPrice")
        except Temporary as exc:
            log_event(logger, "bluefin_mark_failed", logging.WARNING, symbol=symbol, error=str(exc))
            return cached[0] if cached else None
        if price:
            self._marks[symbol] = (price, time.monotonic())
        return price


def _symbol(symbol: str) -> Any:
    from bluefin_v2_client import MARKET_SYMBOLS

    return MARKET_SYMBOLS(symbol)

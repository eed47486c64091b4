"""``BluefinProExchange``: the Exchange port on Bluefin Pro (our own client: ``shared.bluefin_pro``).

How an order goes out (the money-safety rules of DESIGN.md, on an exchange that answers 202 and tells the
outcome later):
1. ``prepare_order`` checks the order against its market (tick, step, limits, leverage), signs it with a
   random salt and an expiry, and says its order hash; the executor records hash and expiry with the order
   row *before* ``place_order`` sends exactly those signed bytes.
2. ``place_order`` sends it once. A request that surely did not reach Bluefin (no connection, inside a 429's
   Retry-After) is ``Rejected``; one whose answer is lost (timeout, 5xx, dropped line) is ``UnknownOutcome``
   and is found again by client id, never resent. After the 202 it waits briefly for the account stream to
   tell the outcome (a market order's fills come back in the same call when the stream is up).
3. The outcome follows on the account stream (order, trade, position, account and command-failure updates);
   every change is remembered per client id, bumps ``revision`` and calls the listener, so the engine folds
   fills in (and protects them) the moment they are known. While the stream is down or since it
   reconnected, look-ups go to REST: the market's open and standby orders and our trades since the order
   was made, paged, matched by client id (or order hash).
4. Cancels and reads back off (``ProClient``); a cancel is confirmed by the stream or by REST.
Leverage is set on the exchange before the first entry in a market, only while the market is flat and none
of our orders works there (Bluefin cancels the market's open orders when leverage changes).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from shared.bluefin_pro.orders import (
    OUR_SIDES,
    OUR_TYPES,
    OWN_CANCELS,
    STATUSES,
    SignedOrder,
    acts_at_once,
    from_millis,
    millis,
    parse_account,
    parse_positions,
    parse_trade,
    sign_order,
)
from shared.bluefin_pro.rest import AnswerLost, ProClient, Refused, RequestNotSent
from shared.bluefin_pro.signing import leverage_message, sign_fields
from shared.bluefin_pro.streams import Message, Stream
from shared.bluefin_pro.units import from_e9, from_e9_or, to_e9
from shared.errors import ConfigError, Fatal, Rejected, Temporary, UnknownOutcome
from shared.exchange.base import (
    Account,
    Exchange,
    ExchangePosition,
    FundingPayment,
    OrderRef,
    PreparedOrder,
)
from shared.exchange.markets import MarketSpec, MarketSpecs
from shared.logs import log_event
from shared.marketdata.bluefin_pro import BluefinProMarketData, funding_of
from shared.marketdata.funding import FundingRate
from shared.marketdata.orderbook import BookError, OrderBook
from shared.models import Fill, OrderRequest, OrderResult, OrderStatus, OrderType, Position, Side

logger = logging.getLogger(__name__)
ACCOUNT_STREAMS = [
    "AccountOrderUpdate", "AccountTradeUpdate", "AccountPositionUpdate", "AccountUpdate",
    "AccountTransactionUpdate", "AccountCommandFailureUpdate",
]  # fmt: skip
MARKET_WAIT_S = 1.0  # how long place_order waits for a market order's outcome on the stream
RESTING_WAIT_S = 0.3  # ... and for a resting order to be seen
CANCEL_WAIT_S = 1.0
REST_VIEW_TTL_S = 0.5  # one REST view of a market serves every look-up of one reconciliation pass
ACCOUNT_TTL_S = 1.0
MARK_TTL_S = 1.0
ACK_GRACE_S = 30.0  # an acknowledged order missing from REST this long after it was made has ended
TRUST_FOR_S = 60.0  # what the stream said of an order is checked against REST at least this often
FORGET_AFTER_S = 3600.0  # an order that ended this long ago is no longer tracked here
TRADES_WINDOW = timedelta(days=6)  # /account/trades answers windows shorter than 7 days
TRADES_PAGE = 1000
EPS = 1e-12


@dataclass
class _Tracked:
    """What we know of one of our orders."""

    client_id: str
    symbol: str
    side: Side
    quantity: float
    exchange_id: str
    standby: bool  # untriggered stop or take-profit
    since: datetime
    status: OrderStatus = OrderStatus.PENDING_SUBMIT
    filled: float = 0.0
    fills: dict[str, Fill] = field(default_factory=dict)
    reason: str | None = None
    refused: bool = False  # Bluefin ended it on arrival for a reason of its own, nothing filled
    cancel_failed: str | None = None  # Bluefin could not cancel it (ORDER_NOT_FOUND ...)
    heard_at: float = 0.0  # monotonic: when the stream last said something of it
    checked_at: float = 0.0  # monotonic: when the stream or REST last showed it
    order_type: OrderType | None = None

    @property
    def final(self) -> bool:
        return self.status.is_final

    def advance(self, status: OrderStatus) -> None:
        """Statuses only move forward (open, partly filled, ended): a late or stale report moves none back."""
        if not self.final and RANK[status] >= RANK[self.status]:
            self.status = status


@dataclass
class _RestView:
    """A market as REST shows it: our open and standby orders, and our trades since a time."""

    at: float
    since: datetime
    open_orders: dict[str, dict[str, Any]]  # by client id (or order hash when it has none)
    by_hash: dict[str, dict[str, Any]]
    standby: set[str]  # order hashes still in standby
    trades: list[dict[str, Any]]


RANK = {
    OrderStatus.PENDING_SUBMIT: 0, OrderStatus.OPEN: 1, OrderStatus.PARTIALLY_FILLED: 2,
    OrderStatus.FILLED: 3, OrderStatus.CANCELED: 3, OrderStatus.REJECTED: 3, OrderStatus.LOST: 3,
    OrderStatus.EXTERNAL: 1,
}  # fmt: skip


def order_hash(value: Any) -> str:
    """An order hash as we keep it: lowercase hex without ``0x`` (Bluefin may answer either way)."""
    return str(value or "").lower().removeprefix("0x")


def _funding_payment(row: dict[str, Any]) -> FundingPayment:
    """A row of the account's funding history (``AccountFundingRateHistoryData``)."""
    return FundingPayment(
        f"{row['symbol']}:{row['executedAtMillis']}",
        str(row["symbol"]),
        from_e9(row["paymentAmountE9"]),
        from_e9(row["rateE9"]),
        str(row.get("positionSide", "")),
        from_millis(row["executedAtMillis"]),
    )


def _answered(tracked: _Tracked, since: float) -> bool:
    """Has the stream said anything of ``tracked`` (ended, or failed to cancel) since ``since``?"""
    return tracked.final or tracked.cancel_failed is not None or tracked.heard_at > since


class BluefinProExchange(Exchange):
    name = "bluefin-pro"
    signs_ahead = True

    def __init__(
        self,
        client: ProClient,
        symbols: tuple[str, ...],
        *,
        isolated: bool = True,
        taker_expiry_s: float = 60.0,
        resting_expiry_s: float = 30 * 86_400.0,
        stream: bool = True,
    ) -> None:
        self.client = client
        self.symbols = symbols
        self.isolated = isolated
        self.taker_expiry_s = taker_expiry_s
        self.resting_expiry_s = resting_expiry_s
        self.specs: MarketSpecs | None = None
        self.ids_id = ""
        self.revision: int = 0
        self._orders: dict[str, _Tracked] = {}
        self._by_hash: dict[str, str] = {}
        self._prepared: dict[str, SignedOrder] = {}
        self._changed: set[str] = set()
        self._resync_all = True  # the stream has not (yet, or since it reconnected) told us everything
        self._connected_at = 0.0  # monotonic: the account stream's latest (re)connect
        self._leverage: dict[str, float] = {}  # what we set (or found) per market
        self._leverage_failure: str | None = None
        self._views: dict[str, _RestView] = {}
        self._account: tuple[float, dict[str, Any]] | None = None
        self._account_dirty_at = 0.0  # monotonic: the stream's latest news of balances or positions
        self._marks: dict[str, tuple[float, float]] = {}
        self._listener: Callable[[], None] | None = None
        self._lock = threading.RLock()
        self._news = threading.Condition(self._lock)
        self._stream: Stream | None = None
        self._want_stream = stream
        self.market = BluefinProMarketData(client, symbols, stream=False)  # ticker, depth

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Read the markets, log in (a refused key is Fatal), start the account stream."""
        info = self.client.get("/v1/exchange/info")
        self.ids_id = str((info.get("contractsConfig") or {}).get("idsId", ""))
        if not self.ids_id:
            raise Fatal("Bluefin Pro's /v1/exchange/info has no contractsConfig.idsId: cannot sign orders")
        self.specs = MarketSpecs.from_exchange_info(info, self.client.hosts.name)
        problems = (
            [
                f"SYMBOLS: {s} is not listed by Bluefin Pro ({self.client.hosts.name})"
                for s in self.symbols
                if not self.specs.listed(s)
            ]
            + [
                f"SYMBOLS: {s} is {self.specs.get(s).status} on Bluefin Pro, not trading"
                for s in self.symbols
                if self.specs.listed(s) and not self.specs.get(s).trading
            ]
            + [
                f"BLUEFIN_MARGIN=cross: {s} trades isolated margin only"
                for s in self.symbols
                if not self.isolated and self.specs.listed(s) and self.specs.get(s).isolated_only
            ]
        )
        if problems:
            raise ConfigError(problems)
        self.client.access_token()
        for held in self.exchange_positions():
            self._leverage[held.position.symbol] = held.leverage
        if self._want_stream:
            self._stream = Stream(
                "account", self.client.hosts.account_stream,
                lambda: [{"method": "Subscribe", "dataStreams": ACCOUNT_STREAMS}],
                self._on_account_message, on_open=self._on_stream_open,
                headers=lambda: {"Authorization": f"Bearer {self.client.access_token()}"},
                silence_s=None,  # an idle account sends nothing; WebSocket pings find a dead connection
            )  # fmt: skip
            self._stream.start()
        log_event(logger, "exchange_started", exchange=self.name, network=self.client.hosts.name,
                  account=self.client.address, markets=list(self.symbols))  # fmt: skip

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
        self.client.close()

    @property
    def stream_connected(self) -> bool:
        return self._stream is not None and self._stream.connected

    def set_listener(self, listener: Callable[[], None]) -> None:
        self._listener = listener

    def market_spec(self, symbol: str) -> MarketSpec:
        if self.specs is None:
            raise Fatal("BluefinProExchange.start() has not read the markets yet")
        return self.specs.get(symbol)

    # --- change tracking -----------------------------------------------------------------------------------
    def _changed_order(self, client_id: str) -> None:
        """Under the lock: something changed on its own; tell the engine."""
        self._changed.add(client_id)
        self.revision += 1
        self._news.notify_all()

    def _tell(self) -> None:
        listener = self._listener
        if listener is not None:
            listener()

    def drain_changed_orders(self) -> set[str] | None:
        """None after a (re)connect or while the stream is down: look at every unresolved order (each order
        the stream told of before the reconnect is read again from REST, see ``_trusted``)."""
        with self._lock:
            self._prune()
            if self._resync_all or not self.stream_connected:
                self._changed.clear()
                self._resync_all = not self.stream_connected
                return None
            drained, self._changed = self._changed, set()
            return drained

    def _trusted(self, tracked: _Tracked) -> bool:
        """Is what the stream told of ``tracked`` enough (no REST look-up)? Only if the stream is up, told it
        since its latest (re)connect, and REST checked it not long ago."""
        now = time.monotonic()
        return (
            self.stream_connected
            and tracked.heard_at > self._connected_at
            and now - tracked.checked_at < TRUST_FOR_S
        )

    @property
    def changes_pending(self) -> bool:
        return bool(self._changed) or self._resync_all

    # --- orders: sign, send --------------------------------------------------------------------------------
    def _normalised(self, request: OrderRequest) -> OrderRequest:
        """Prices on the market's tick, leverage a whole number; refused if the market would refuse it."""
        spec = self.market_spec(request.symbol)
        price = spec.round_price(request.price) if request.price is not None else None
        trigger = spec.round_price(request.trigger_price) if request.trigger_price is not None else None
        normal = replace(request, price=price, trigger_price=trigger, leverage=float(int(request.leverage)))
        problems = spec.problems(normal)
        if problems:
            raise Rejected(f"{request.symbol}: " + "; ".join(problems))
        return normal

    def prepare_order(self, request: OrderRequest) -> PreparedOrder:
        normal = self._normalised(request)
        if normal.reduce_only:  # signed with the leverage the market has: it must not change under a position
            leverage = self._leverage.get(normal.symbol, normal.leverage)
        else:
            leverage = self._ensure_leverage(normal.symbol, normal.leverage)
        signed = sign_order(
            normal, self._key(), self.ids_id, leverage, self.isolated, datetime.now(UTC),
            self.taker_expiry_s, self.resting_expiry_s,
        )  # fmt: skip
        with self._lock:
            self._prepared[request.client_id] = signed
        return PreparedOrder(signed.order_hash, signed.signed_at, signed.expires_at)

    def _key(self) -> Any:
        if self.client.key is None:
            raise Fatal("no BLUEFIN_PRIVATE_KEY: cannot sign")
        return self.client.key

    def place_order(self, request: OrderRequest) -> OrderResult:
        with self._lock:
            signed = self._prepared.pop(request.client_id, None)
        if signed is None:  # signing again would send bytes whose hash and expiry nobody recorded
            raise Fatal(f"order {request.client_id} was not prepared (signed and recorded) before placing")
        tracked = _Tracked(
            request.client_id, request.symbol, request.side, request.quantity, signed.order_hash,
            signed.standby, signed.signed_at, order_type=request.order_type,
        )  # fmt: skip
        with self._lock:
            self._orders[request.client_id] = tracked
            self._by_hash[signed.order_hash] = request.client_id
        try:
            answer = self.client.send("POST", "/api/v1/trade/orders", signed.body)
        except RequestNotSent as exc:
            self._forget(tracked)
            raise Rejected(f"not placed: {exc}") from exc
        except AnswerLost as exc:
            raise UnknownOutcome(f"placing {request.client_id}: {exc}") from exc
        except Refused as exc:
            self._forget(tracked)
            raise Rejected(str(exc)) from exc
        given = order_hash(answer.get("orderHash")) if isinstance(answer, dict) else ""
        with self._lock:
            if given and given != tracked.exchange_id:
                log_event(logger, "bluefin_order_hash_differs", logging.WARNING, client_id=request.client_id,
                          ours=tracked.exchange_id, theirs=given)  # fmt: skip
                self._by_hash[given] = request.client_id
                tracked.exchange_id = given
            tracked.advance(OrderStatus.OPEN)
            self._changed.discard(request.client_id)
        self._await_outcome(tracked, acts_at_once(request))
        with self._lock:
            if tracked.refused:
                raise Rejected(f"Bluefin ended it: {tracked.reason}")
            self._changed.discard(request.client_id)  # the caller gets this result directly
            return self._result(tracked)

    def _forget(self, tracked: _Tracked) -> None:
        with self._lock:
            self._orders.pop(tracked.client_id, None)
            self._by_hash.pop(tracked.exchange_id, None)

    def _await_outcome(self, tracked: _Tracked, at_once: bool) -> None:
        """Give the stream a moment to tell the outcome (REST once when the stream is down)."""
        if not self.stream_connected:
            time.sleep(0.05)
            try:
                self._refresh(tracked, force=True)
            except Temporary as exc:
                log_event(logger, "bluefin_outcome_unread", logging.WARNING, client_id=tracked.client_id,
                          error=str(exc))  # fmt: skip
            return
        with self._news:  # a new order: any news of it (even before the answer came) is what we wait for
            if at_once:
                self._news.wait_for(lambda: tracked.final, MARKET_WAIT_S)
            else:
                self._news.wait_for(lambda: tracked.heard_at > 0, RESTING_WAIT_S)

    # --- orders: look-ups -----------------------------------------------------------------------------------
    def _track_ref(self, ref: OrderRef) -> _Tracked:
        """The order our books know, tracked from what they say (after a restart: from now on); what they
        say of it (side, quantity, since) is the truth where a stream message could only guess."""
        with self._lock:
            tracked = self._orders.get(ref.client_id)
            if tracked is None:
                status = OrderStatus.OPEN if ref.acknowledged else OrderStatus.PENDING_SUBMIT
                tracked = _Tracked(
                    ref.client_id,
                    ref.symbol,
                    ref.side,
                    ref.quantity,
                    order_hash(ref.exchange_id),
                    ref.has_trigger,
                    ref.since,
                    status=status,
                )
                self._orders[ref.client_id] = tracked
            else:
                tracked.side, tracked.quantity, tracked.since = (
                    ref.side,
                    ref.quantity,
                    min(tracked.since, ref.since),
                )
                tracked.exchange_id = tracked.exchange_id or order_hash(ref.exchange_id)
                if ref.acknowledged:
                    tracked.advance(OrderStatus.OPEN)
            if tracked.exchange_id:
                self._by_hash[tracked.exchange_id] = ref.client_id
            return tracked

    def get_order(self, client_id: str, ref: OrderRef | None = None) -> OrderResult | None:
        if ref is not None:
            tracked = self._track_ref(ref)
        else:
            with self._lock:
                found = self._orders.get(client_id)
            if found is None:
                return None  # not one of ours, or nothing to look for
            tracked = found
        if not (tracked.final or self._trusted(tracked)):
            self._refresh(tracked)
        with self._lock:
            if tracked.status is OrderStatus.PENDING_SUBMIT:
                return None  # Bluefin has not shown it to us
            return self._result(tracked)

    def _refresh(self, tracked: _Tracked, force: bool = False) -> None:
        """Bring ``tracked`` up to date from REST (open and standby orders, trades). Trades are merged by
        trade id; a status is taken only from a view read after the stream's latest news of the order, and
        only forward."""
        view = self._view(tracked.symbol, tracked.since, force)
        with self._lock:
            raw = view.open_orders.get(tracked.client_id) or view.by_hash.get(tracked.exchange_id)
            seen = raw is not None
            for trade in view.trades:
                if trade.get("clientOrderId") == tracked.client_id or (
                    tracked.exchange_id and order_hash(trade.get("orderHash")) == tracked.exchange_id
                ):
                    fill = parse_trade(trade, tracked.client_id)
                    tracked.fills.setdefault(fill.trade_id, replace(fill, symbol=tracked.symbol))
                    seen = True
            traded = sum(f.quantity for f in tracked.fills.values())
            tracked.filled = max(tracked.filled, traded)
            if view.at > tracked.heard_at:  # REST is newer than anything the stream said of it
                if raw is not None:
                    tracked.exchange_id = tracked.exchange_id or order_hash(raw.get("orderHash"))
                    tracked.advance(STATUSES.get(str(raw.get("status")), OrderStatus.OPEN))
                    tracked.filled = max(tracked.filled, from_e9_or(raw.get("filledQuantityE9")))
                    tracked.standby = order_hash(raw.get("orderHash")) in view.standby
                elif traded >= tracked.quantity - EPS:
                    tracked.advance(OrderStatus.FILLED)
                elif tracked.status is not OrderStatus.PENDING_SUBMIT and datetime.now(
                    UTC
                ) - tracked.since > timedelta(
                    seconds=ACK_GRACE_S
                ):  # acknowledged, gone from the book, not (fully) traded: cancelled or expired there
                    if not tracked.final:
                        tracked.reason = tracked.reason or "no longer open on Bluefin (cancelled or expired)"
                    tracked.advance(OrderStatus.CANCELED)
                elif traded > 0:
                    tracked.advance(OrderStatus.PARTIALLY_FILLED)
            if seen:
                tracked.checked_at = view.at

    def _view(self, symbol: str, since: datetime, force: bool = False) -> _RestView:
        cached = self._views.get(symbol)
        now = time.monotonic()
        if not force and cached is not None and now - cached.at < REST_VIEW_TTL_S and cached.since <= since:
            return cached
        earliest = (
            min(since, cached.since) if cached is not None and now - cached.at < REST_VIEW_TTL_S else since
        )
        open_orders = self.client.get("/api/v1/trade/openOrders", {"symbol": symbol}, auth=True) or []
        standby = self.client.get("/api/v1/trade/standbyOrders", {"symbol": symbol}, auth=True) or []
        every = [*open_orders, *standby]
        view = _RestView(
            now, earliest,
            {str(o.get("clientOrderId") or order_hash(o.get("orderHash"))): o for o in every},
            {order_hash(o.get("orderHash")): o for o in every},
            {order_hash(o.get("orderHash")) for o in standby},
            self._trades(symbol, earliest - timedelta(seconds=60)),
        )  # fmt: skip
        self._views[symbol] = view
        return view

    def _trades(self, symbol: str, since: datetime) -> list[dict[str, Any]]:
        """Our trades in ``symbol`` since ``since``."""
        return self._history("/api/v1/account/trades", {"symbol": symbol}, since, lambda answer: answer or [])

    def _history(
        self, path: str, params: dict[str, Any], since: datetime, rows: Callable[[Any], list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Every row of an account history since ``since``: every page of every window (Bluefin answers
        windows shorter than seven days, at most TRADES_PAGE rows a page)."""
        found: list[dict[str, Any]] = []
        end = datetime.now(UTC) + timedelta(seconds=5)
        start = since
        while start < end:
            stop = min(start + TRADES_WINDOW, end)
            page = 1
            while True:
                query = {**params, "startTimeAtMillis": millis(start), "endTimeAtMillis": millis(stop),
                         "limit": TRADES_PAGE, "page": page}  # fmt: skip
                batch = rows(self.client.get(path, query, auth=True))
                found.extend(batch)
                if len(batch) < TRADES_PAGE:
                    break
                page += 1
            start = stop
        return found

    def _result(self, tracked: _Tracked) -> OrderResult:
        fills = tuple(sorted(tracked.fills.values(), key=lambda f: (f.time, f.trade_id)))
        filled = max(tracked.filled, sum(f.quantity for f in fills))
        notional = sum(f.quantity * f.price for f in fills)
        traded = sum(f.quantity for f in fills)
        status = tracked.status
        if status is OrderStatus.OPEN and filled > EPS:
            status = OrderStatus.PARTIALLY_FILLED
        return OrderResult(
            client_id=tracked.client_id, exchange_id=tracked.exchange_id, status=status,
            filled_quantity=round(filled, 9), average_price=notional / traded if traded > EPS else None,
            fills=fills, reason=tracked.reason, symbol=tracked.symbol, side=tracked.side,
            quantity=tracked.quantity, order_type=tracked.order_type,
        )  # fmt: skip

    def open_orders(self, symbol: str | None = None) -> list[OrderResult]:
        results = []
        for market in [symbol] if symbol else list(self.symbols):
            view = self._view(market, datetime.now(UTC), force=True)
            for raw in view.by_hash.values():
                side = OUR_SIDES.get(str(raw.get("side")), Side.BUY)
                filled = from_e9_or(raw.get("filledQuantityE9"))
                results.append(
                    OrderResult(
                        client_id=str(raw.get("clientOrderId") or raw.get("orderHash")),
                        exchange_id=str(raw.get("orderHash")),
                        status=OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN,
                        filled_quantity=filled, average_price=None, symbol=market, side=side,
                        quantity=from_e9(raw["quantityE9"]), order_type=OUR_TYPES.get(str(raw.get("type"))),
                    )
                )  # fmt: skip
        return results

    # --- cancels --------------------------------------------------------------------------------------------
    def cancel_order(self, client_id: str, ref: OrderRef | None = None) -> OrderResult:
        with self._lock:
            tracked = self._orders.get(client_id)
        if tracked is None:
            if ref is None:
                raise Rejected(f"unknown order {client_id}")
            tracked = self._track_ref(ref)
        if not tracked.exchange_id:
            raise Rejected(f"order {client_id} has no order hash: it never reached Bluefin")
        if tracked.final:
            raise Rejected(f"order {client_id} is not open ({tracked.status})")
        paths = ["/api/v1/trade/orders/cancel/standby", "/api/v1/trade/orders/cancel"]
        if not tracked.standby:
            paths.reverse()
        for path in paths:
            with self._lock:
                tracked.cancel_failed = None
                started = tracked.heard_at
            try:
                self.client.send(
                    "PUT", path, {"symbol": tracked.symbol, "orderHashes": [tracked.exchange_id]}
                )
            except Refused as exc:
                raise Rejected(f"cancel {client_id}: {exc}") from exc
            if self.stream_connected:
                with self._news:
                    self._news.wait_for(partial(_answered, tracked, started), CANCEL_WAIT_S)
            if tracked.final:
                break
            if tracked.cancel_failed is None:
                self._refresh(tracked, force=True)
                if tracked.final:
                    break
                raw = self._views[tracked.symbol].by_hash.get(tracked.exchange_id)
                if raw is not None:
                    raise Temporary(f"cancel of {client_id} not confirmed yet")
        with self._lock:
            if not tracked.final:
                raise Rejected(f"Bluefin could not cancel {client_id}: {tracked.cancel_failed or 'not open'}")
            self._changed.discard(client_id)
            return self._result(tracked)

    # --- the account stream ---------------------------------------------------------------------------------
    def _on_stream_open(self) -> None:
        with self._lock:
            self._resync_all = True
            self._connected_at = time.monotonic()  # what the stream said before is checked again over REST
            self._account = None
            self.revision += 1
        self._tell()

    def _on_account_message(self, message: Message) -> None:
        event, payload = message.get("event"), message.get("payload") or {}
        changed = False
        with self._lock:
            if event == "AccountOrderUpdate":
                changed = self._order_update(payload)
            elif event == "AccountTradeUpdate":
                changed = self._trade_update(payload.get("trade") or {})
            elif event in ("AccountPositionUpdate", "AccountUpdate", "AccountTransactionUpdate"):
                self._account, self._account_dirty_at = None, time.monotonic()
                if event == "AccountPositionUpdate" and payload.get("symbol"):
                    leverage = from_e9_or(payload.get("clientSetLeverageE9"))
                    if leverage:
                        self._leverage[str(payload["symbol"])] = leverage
            elif event == "AccountCommandFailureUpdate":
                failure = str(payload.get("reason") or payload.get("reasonCode") or "failed")
                command = f"{payload.get('failedCommandTypeCode', '')} {payload.get('failedCommandType', '')}"
                if "LEVERAGE" in command.upper():
                    self._leverage_failure = failure
                    self._leverage.clear()  # not known any more: set again before the next entry
                log_event(
                    logger,
                    "bluefin_command_failed",
                    logging.ERROR,
                    alert=True,
                    command=payload.get("failedCommandType"),
                    reason=failure,
                )
                self._news.notify_all()
        if changed:
            self._tell()

    def _tracked_for(self, payload: dict[str, Any], order: bool = False) -> _Tracked | None:
        """The tracked order a message is about (by client id, else order hash). With ``order`` (an order
        update, which carries the order's own quantity) one of ours this process did not place (before a
        restart) is tracked from now on; a trade never starts a tracker (its quantity is the trade's)."""
        client_id = payload.get("clientOrderId") or self._by_hash.get(order_hash(payload.get("orderHash")))
        tracked = self._orders.get(str(client_id)) if client_id else None
        if tracked is None and order and client_id and payload.get("quantityE9") is not None:
            since = from_millis(payload.get("createdAtMillis") or millis(datetime.now(UTC)))
            tracked = _Tracked(
                str(client_id), str(payload.get("symbol")), OUR_SIDES.get(str(payload.get("side")), Side.BUY),
                from_e9(payload["quantityE9"]), order_hash(payload.get("orderHash")),
                payload.get("status") == "STANDBY", since, status=OrderStatus.OPEN,
                order_type=OUR_TYPES.get(str(payload.get("type"))),
            )  # fmt: skip
            self._orders[tracked.client_id] = tracked
            self._by_hash[tracked.exchange_id] = tracked.client_id
        return tracked

    def _order_update(self, payload: dict[str, Any]) -> bool:
        tracked = self._tracked_for(payload, order=True)
        if tracked is None:
            return False
        now = time.monotonic()
        if "cancellationReason" in payload or "failureToCancelReason" in payload:
            failure = payload.get("failureToCancelReason")
            if failure not in (None, "", "NO_FAILURE", "UNSPECIFIED"):
                tracked.cancel_failed = str(failure)
                tracked.heard_at = now
                self._news.notify_all()
                return False
            reason = str(payload.get("cancellationReason") or "CANCELLED")
            if reason == "DUPLICATE_ORDER":  # the same signed bytes again: the original order lives on
                return False
            if not tracked.final:
                remaining = payload.get("remainingQuantityE9")
                untouched = (
                    from_e9(remaining) >= tracked.quantity - EPS
                    if remaining not in (None, "")
                    else tracked.filled <= EPS and not tracked.fills
                )
                tracked.reason = reason
                tracked.refused = reason not in OWN_CANCELS and untouched
                tracked.advance(OrderStatus.CANCELED)
        else:
            tracked.standby = payload.get("status") == "STANDBY"
            tracked.exchange_id = tracked.exchange_id or order_hash(payload.get("orderHash"))
            tracked.filled = max(tracked.filled, from_e9_or(payload.get("filledQuantityE9")))
            tracked.advance(STATUSES.get(str(payload.get("status")), OrderStatus.OPEN))
        tracked.heard_at = tracked.checked_at = now
        self._changed_order(tracked.client_id)
        return True

    def _trade_update(self, trade: dict[str, Any]) -> bool:
        tracked = self._tracked_for(trade)
        if tracked is None or not trade.get("id"):
            return False
        fill = parse_trade(trade, tracked.client_id)
        if fill.trade_id in tracked.fills:
            return False
        tracked.fills[fill.trade_id] = replace(fill, symbol=fill.symbol or tracked.symbol)
        tracked.filled = max(tracked.filled, sum(f.quantity for f in tracked.fills.values()))
        tracked.heard_at = tracked.checked_at = time.monotonic()
        self._account, self._account_dirty_at = None, tracked.heard_at
        self._changed_order(tracked.client_id)
        return True

    def _prune(self) -> None:
        """Under the lock: forget orders that ended long ago (our books keep them; a late report of one is
        looked up by its reference)."""
        horizon = time.monotonic() - FORGET_AFTER_S
        for client_id in [c for c, t in self._orders.items() if t.final and t.checked_at < horizon]:
            tracked = self._orders.pop(client_id)
            self._by_hash.pop(tracked.exchange_id, None)

    # --- account --------------------------------------------------------------------------------------------
    def _account_data(self) -> dict[str, Any]:
        with self._lock:
            cached = self._account
        if cached is not None and time.monotonic() - cached[0] < ACCOUNT_TTL_S:
            return cached[1]
        asked = time.monotonic()
        data = self.client.get("/api/v1/account", {"accountAddress": self.client.address}, auth=True)
        if not isinstance(data, dict):
            raise Temporary("Bluefin /api/v1/account: unexpected answer")
        with self._lock:
            if self._account is None or self._account[0] < asked:
                self._account = (asked, data)  # a stream event meanwhile makes the next read fresh again
            if self._account_dirty_at > asked:
                self._account = None
        return data

    def account(self) -> Account:
        return parse_account(self._account_data())

    def exchange_positions(self) -> list[ExchangePosition]:
        return parse_positions(self._account_data())

    def positions(self) -> list[Position]:
        return [p.position for p in self.exchange_positions()]

    def funding_payments(self, since: datetime) -> list[FundingPayment]:
        """Our funding history (``/api/v1/account/fundingRateHistory``) since ``since``, oldest first."""
        rows = self._history(
            "/api/v1/account/fundingRateHistory", {"accountAddress": self.client.address}, since,
            lambda answer: answer.get("data", []) if isinstance(answer, dict) else [],
        )  # fmt: skip
        found = {payment.key: payment for payment in map(_funding_payment, rows)}  # one per settlement
        return sorted((p for p in found.values() if p.time >= since), key=lambda p: (p.time, p.key))

    def set_leverage(self, symbol: str, leverage: float) -> None:
        """Only with the market flat and none of our orders working there (it would cancel them)."""
        spec = self.market_spec(symbol)
        wanted = float(int(leverage))
        if not 1 <= wanted <= spec.max_leverage:
            raise Rejected(f"leverage {leverage:g} is outside 1..{spec.max_leverage:g} for {symbol}")
        if any(p.symbol == symbol and p.quantity for p in self.positions()):
            raise Rejected(f"change leverage with {symbol} flat")
        if self.open_orders(symbol):
            raise Rejected(f"changing leverage would cancel the orders working in {symbol}")
        key = self._key()
        now_ms, salt = millis(datetime.now(UTC)), secrets.randbits(63)
        message = leverage_message(self.ids_id, key.address, symbol, to_e9(wanted), salt, now_ms)
        body = {
            "signedFields": {
                "accountAddress": key.address, "symbol": symbol, "leverageE9": str(to_e9(wanted)),
                "salt": str(salt), "idsId": self.ids_id, "signedAtMillis": now_ms,
            },
            "signature": sign_fields(key, message),
        }  # fmt: skip
        with self._lock:
            self._leverage_failure = None
        try:
            self.client.send("PUT", "/api/v1/trade/leverage", body)
        except (Refused, RequestNotSent) as exc:
            raise Rejected(f"leverage {wanted:g} for {symbol}: {exc}") from exc
        except AnswerLost as exc:
            raise Temporary(f"leverage {wanted:g} for {symbol}: {exc}") from exc
        if self.stream_connected:
            with self._news:
                self._news.wait_for(lambda: self._leverage_failure is not None, 0.3)
        with self._lock:
            if self._leverage_failure is not None:
                raise Rejected(f"Bluefin refused leverage {wanted:g} for {symbol}: {self._leverage_failure}")
            self._leverage[symbol] = wanted
        log_event(logger, "bluefin_leverage_set", symbol=symbol, leverage=wanted)

    def _ensure_leverage(self, symbol: str, leverage: float) -> float:
        """Before an entry: the market's leverage set to ``leverage`` if it can be (flat, nothing working);
        else the leverage the market has, which the order is signed with."""
        if self._leverage.get(symbol) == leverage:
            return leverage
        try:
            self.set_leverage(symbol, leverage)
            return leverage
        except Rejected as exc:
            current = self._leverage.get(symbol, leverage)
            log_event(logger, "bluefin_leverage_kept", logging.WARNING, symbol=symbol, wanted=leverage,
                      kept=current, why=str(exc))  # fmt: skip
            return current

    # --- market data (Bluefin Pro's public REST, as the feed reads it) -------------------------------------
    def mark_price(self, symbol: str) -> float | None:
        cached = self._marks.get(symbol)
        if cached and time.monotonic() - cached[1] < MARK_TTL_S:
            return cached[0]
        try:
            price = from_e9_or(self.market.ticker(symbol).get("markPriceE9")) or None
        except Temporary as exc:
            log_event(logger, "bluefin_mark_failed", logging.WARNING, symbol=symbol, error=str(exc))
            return cached[0] if cached else None
        if price:
            self._marks[symbol] = (price, time.monotonic())
        return price

    def funding_rate(self, symbol: str) -> FundingRate | None:
        return funding_of(self.market.ticker(symbol), symbol)

    def orderbook(self, symbol: str) -> OrderBook | None:
        try:
            return self.market.orderbook(symbol)
        except (BookError, ValueError, TypeError) as exc:
            log_event(logger, "bluefin_book_unusable", logging.WARNING, symbol=symbol, error=str(exc))
            return None

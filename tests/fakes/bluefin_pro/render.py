"""The fake's answers and stream payloads in the shapes of Bluefin's OpenAPI spec (e9 decimal strings,
times in ms). Optional fields are left out rather than sent as null (the spec declares nothing nullable)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.bluefin_pro.market import (
    ASSET_NAMES,
    E9,
    Candle,
    aggregate,
    bucket_end,
    bucket_start,
    div,
    funding_rate_e9,
    mul,
    notional,
)

if TYPE_CHECKING:
    from tests.fakes.bluefin_pro.engine import Account, Engine, Order, Position

ASSET = "USDC"


def _with_client_id(payload: dict[str, Any], client_order_id: str | None) -> dict[str, Any]:
    if client_order_id is not None:
        payload["clientOrderId"] = client_order_id
    return payload


# --- orders --------------------------------------------------------------------------------------------
def _order_fields(order: Order) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "orderHash": order.hash,
        "symbol": order.symbol,
        "accountAddress": order.account,
        "signerAddress": order.signer,
        "priceE9": str(order.price),
        "quantityE9": str(order.quantity),
        "filledQuantityE9": str(order.filled),
        "side": order.side,
        "leverageE9": str(order.leverage),
        "isIsolated": order.isolated,
        "salt": order.salt,
        "expiresAtMillis": order.expires,
        "signedAtMillis": order.signed_at,
        "type": order.type,
        "reduceOnly": order.reduce_only,
        "postOnly": order.post_only,
        "timeInForce": order.tif,
        "status": order.status,
        "selfTradePreventionType": order.stp,
        "updatedAtMillis": order.updated,
    }
    if order.trigger is not None:
        fields["triggerPriceE9"] = str(order.trigger)
    return _with_client_id(fields, order.client_order_id)


def active_order(order: Order) -> dict[str, Any]:
    """ActiveOrderUpdate (account stream)."""
    return {**_order_fields(order), "createdAtMillis": order.created}


def open_order(order: Order) -> dict[str, Any]:
    """OpenOrderResponse (GET /api/v1/trade/openOrders and /standbyOrders)."""
    return {**_order_fields(order), "orderTimeAtMillis": order.created}


def cancellation(
    order_hash: str,
    client_order_id: str | None,
    symbol: str,
    account: str,
    created: int,
    reason: str,
    remaining: int,
    failure: str | None = None,
) -> dict[str, Any]:
    """OrderCancellationUpdate (account stream)."""
    payload: dict[str, Any] = {
        "orderHash": order_hash,
        "symbol": symbol,
        "accountAddress": account,
        "createdAtMillis": created,
        "cancellationReason": reason,
        "remainingQuantityE9": str(remaining),
    }
    if failure is not None:
        payload["failureToCancelReason"] = failure
    return _with_client_id(payload, client_order_id)


# --- trades --------------------------------------------------------------------------------------------
def public_trade(trade_id: str, symbol: str, side: str, price: int, quantity: int, at: int) -> dict[str, Any]:
    """A market trade (GET /v1/exchange/trades, Recent_Trade stream): no account details."""
    return {
        "id": trade_id,
        "symbol": symbol,
        "tradeType": "ORDER",
        "side": side,
        "isMaker": False,
        "priceE9": str(price),
        "quantityE9": str(quantity),
        "quoteQuantityE9": str(notional(price, quantity)),
        "executedAtMillis": at,
    }


def account_trade(
    engine: Engine,
    order: Order,
    trade_id: str,
    price: int,
    quantity: int,
    fee: int,
    realized: int,
    maker: bool,
    position_side: str,
) -> dict[str, Any]:
    """A fill of one of the account's orders (Trade; tradingFeeE9 positive = paid)."""
    mark = str(engine.price(order.symbol))
    trade = {
        "id": trade_id,
        "symbol": order.symbol,
        "orderHash": order.hash,
        "orderType": order.type,
        "tradeType": "ORDER",
        "side": order.side,
        "isMaker": maker,
        "priceE9": str(price),
        "quantityE9": str(quantity),
        "quoteQuantityE9": str(notional(price, quantity)),
        "realizedPnlE9": str(realized),
        "positionSide": position_side,
        "tradingFeeE9": str(fee),
        "tradingFeeAsset": ASSET,
        "gasFeeE9": "0",
        "gasFeeAsset": ASSET,
        "markPriceE9": mark,
        "oraclePriceE9": mark,
        "executedAtMillis": order.updated,
    }
    return _with_client_id(trade, order.client_order_id)


def liquidation_trade(
    engine: Engine, position: Position, trade_id: str, side: str, price: int, realized: int
) -> dict[str, Any]:
    mark = str(engine.price(position.symbol))
    quantity = abs(position.size)
    return {
        "id": trade_id,
        "symbol": position.symbol,
        "orderType": "LIQUIDATION",
        "tradeType": "LIQUIDATION",
        "side": side,
        "isMaker": False,
        "priceE9": str(price),
        "quantityE9": str(quantity),
        "quoteQuantityE9": str(notional(price, quantity)),
        "realizedPnlE9": str(realized),
        "positionSide": position.side,
        "tradingFeeE9": "0",
        "tradingFeeAsset": ASSET,
        "gasFeeE9": "0",
        "gasFeeAsset": ASSET,
        "markPriceE9": mark,
        "oraclePriceE9": mark,
        "executedAtMillis": position.updated,
    }


def transaction(
    transaction_id: str, kind: str, amount: int, symbol: str, trade_id: str, at: int
) -> dict[str, Any]:
    """Transaction (GET /api/v1/account/transactions)."""
    record: dict[str, Any] = {
        "id": transaction_id,
        "type": kind,
        "amountE9": str(amount),
        "status": "SUCCESS",
        "assetSymbol": ASSET,
        "executedAtMillis": at,
    }
    if symbol:
        record["symbol"] = symbol
    if trade_id:
        record["tradeId"] = trade_id
    return record


def transaction_update(record: dict[str, Any]) -> dict[str, Any]:
    """AccountTransactionUpdate (account stream) of a Transaction."""
    payload = {
        "transactionType": record["type"],
        "amountE9": record["amountE9"],
        "assetSymbol": ASSET,
        "executedAtMillis": record["executedAtMillis"],
    }
    for key in ("symbol", "tradeId"):
        if key in record:
            payload[key] = record[key]
    return payload


# --- positions and accounts ----------------------------------------------------------------------------
def position_update(engine: Engine, position: Position) -> dict[str, Any]:
    """AccountPositionUpdate (account stream)."""
    spec = engine.spec(position.symbol)
    mark = engine.price(position.symbol)
    value = notional(mark, abs(position.size))
    return {
        "symbol": position.symbol,
        "avgEntryPriceE9": str(position.entry),
        "clientSetLeverageE9": str(position.leverage),
        "liquidationPriceE9": str(engine.liquidation_price(position)),
        "markPriceE9": str(mark),
        "notionalValueE9": str(value),
        "sizeE9": str(abs(position.size)),
        "unrealizedPnlE9": str(engine.unrealized_pnl(position)),
        "side": position.side,
        "marginRequiredE9": str(div(value, position.leverage)),
        "maintenanceMarginE9": str(mul(value, spec.mmr)),
        "isIsolated": position.isolated,
        "isolatedMarginE9": str(position.margin),
        "updatedAtMillis": position.updated,
    }


def closed_position_update(engine: Engine, position: Position) -> dict[str, Any]:
    """The last AccountPositionUpdate of a position that is now closed (size 0)."""
    return {
        **position_update(engine, position),
        "sizeE9": "0",
        "notionalValueE9": "0",
        "unrealizedPnlE9": "0",
        "marginRequiredE9": "0",
        "maintenanceMarginE9": "0",
        "isolatedMarginE9": "0",
        "liquidationPriceE9": "0",
    }


def position(engine: Engine, position: Position) -> dict[str, Any]:
    """Position (GET /api/v1/account). Funding payments are balance changes: positive = received."""
    return {
        **position_update(engine, position),
        "fundingRatePaymentAllTimeE9": str(position.funding_all_time),
        "fundingRatePaymentSinceChangeE9": str(position.funding_since_change),
        "fundingRatePaymentSinceOpenedE9": str(position.funding_since_opened),
    }


def account_update(engine: Engine, account: Account) -> dict[str, Any]:
    """AccountUpdate (account stream); the Account answer adds positions and the address."""
    positions = list(account.positions.values())
    cross = [p for p in positions if not p.isolated]
    isolated_margin = sum(p.margin for p in positions if p.isolated)
    cross_pnl = [engine.unrealized_pnl(p) for p in cross]
    cross_notional = sum(notional(engine.price(p.symbol), abs(p.size)) for p in cross)
    cross_maintenance = sum(
        mul(notional(engine.price(p.symbol), abs(p.size)), engine.spec(p.symbol).mmr) for p in cross
    )
    cross_balance = account.balance - isolated_margin
    cross_value = cross_balance + sum(cross_pnl)
    available = engine.available(account)
    first = next(iter(engine.specs.values()))
    return {
        "tradingFees": {
            "makerFeeE9": str(first.maker_fee),
            "takerFeeE9": str(first.taker_fee),
            "isApplied": False,
        },
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "crossEffectiveBalanceE9": str(cross_balance),
        "crossMarginRequiredE9": str(sum(p.margin for p in cross)),
        "totalOrderMarginRequiredE9": str(engine.order_margin(account)),
        "marginAvailableE9": str(available),
        "crossMaintenanceMarginRequiredE9": str(cross_maintenance),
        "crossMaintenanceMarginAvailableE9": str(cross_value - cross_maintenance),
        "crossMaintenanceMarginRatioE9": str(div(cross_maintenance, cross_value) if cross_value > 0 else 0),
        "crossLeverageE9": str(div(cross_notional, cross_value) if cross_value > 0 else 0),
        "crossUnrealizedPnlE9": str(sum(cross_pnl)),
        "totalUnrealizedPnlE9": str(sum(engine.unrealized_pnl(p) for p in positions)),
        "crossUnrealizedLossE9": str(sum(min(0, pnl) for pnl in cross_pnl)),
        "crossAccountValueE9": str(cross_value),
        "totalAccountValueE9": str(account.balance + sum(engine.unrealized_pnl(p) for p in positions)),
        "updatedAtMillis": account.updated,
        "assets": [
            {
                "symbol": ASSET,
                "quantityE9": str(account.balance),
                "effectiveBalanceE9": str(account.balance),
                "maxWithdrawQuantityE9": str(max(0, available)),
                "updatedAtMillis": account.updated,
            }
        ],
        "authorizedAccounts": [],
        "authorizedWallets": [],
    }


def account(engine: Engine, account: Account) -> dict[str, Any]:
    """Account (GET /api/v1/account)."""
    return {
        **account_update(engine, account),
        "accountAddress": account.address,
        "positions": [position(engine, p) for p in account.positions.values()],
    }


# --- exchange ------------------------------------------------------------------------------------------
def market(engine: Engine, symbol: str, address: str) -> dict[str, Any]:
    """Market (in GET /v1/exchange/info)."""
    spec = engine.spec(symbol)
    base = spec.base_asset
    steps = range(1, spec.max_leverage // E9 + 1)
    return {
        "symbol": symbol,
        "marketAddress": address,
        "status": spec.status,
        "baseAssetSymbol": base,
        "baseAssetName": ASSET_NAMES.get(base, base),
        "baseAssetDecimals": 9,
        "stepSizeE9": str(spec.step),
        "tickSizeE9": str(spec.tick),
        "minOrderQuantityE9": str(spec.min_quantity),
        "maxLimitOrderQuantityE9": str(spec.max_limit_quantity),
        "maxMarketOrderQuantityE9": str(spec.max_market_quantity),
        "minOrderPriceE9": str(spec.min_price),
        "maxOrderPriceE9": str(spec.max_price),
        "maintenanceMarginRatioE9": str(spec.mmr),
        "initialMarginRatioE9": str(spec.imr),
        "insurancePoolRatioE9": "300000000",
        "defaultLeverageE9": str(spec.default_leverage),
        "maxNotionalAtOpenE9": [str(1_000_000_000 * E9 // lev) for lev in steps],
        "minTradeQuantityE9": str(spec.min_quantity),
        "maxTradeQuantityE9": str(spec.max_limit_quantity),
        "minTradePriceE9": str(spec.min_price),
        "maxTradePriceE9": str(spec.max_price),
        "maxFundingRateE9": str(spec.max_funding_rate),
        "defaultMakerFeeE9": str(spec.maker_fee),
        "defaultTakerFeeE9": str(spec.taker_fee),
        "insurancePoolAddress": "0x" + "1" * 64,
        "feePoolAddress": "0x" + "2" * 64,
        "tradingStartTimeAtMillis": "1704067200000",
        "mtbLongE9": "200000000",
        "mtbShortE9": "200000000",
        "delistingPriceE9": "0",
        "isolatedOnly": spec.isolated_only,
    }


def book(engine: Engine, symbol: str, levels: int) -> tuple[list[list[str]], list[list[str]]]:
    """A simple book around the price: ``levels`` each side, one tick off the price, then wider."""
    spec = engine.spec(symbol)
    price = engine.price(symbol)
    gap = max(spec.tick, price // 10_000 // spec.tick * spec.tick)
    bids, asks = [], []
    for i in range(levels):
        quantity = str(spec.min_quantity * (10 + 5 * i))
        bid = price - spec.tick - i * gap
        if bid > 0:
            bids.append([str(bid), quantity])
        asks.append([str(price + spec.tick + i * gap), quantity])
    return bids, asks


def depth(engine: Engine, symbol: str, levels: int, at: int) -> dict[str, Any]:
    """OrderbookDepthResponse (GET /v1/exchange/depth)."""
    bids, asks = book(engine, symbol, levels)
    best_bid = bids[0] if bids else ["0", "0"]
    best_ask = asks[0] if asks else ["0", "0"]
    return {
        "symbol": symbol,
        "lastUpdateId": engine.book_updates,
        "updatedAtMillis": at,
        "responseSentAtMillis": at,
        "bestBidPriceE9": best_bid[0],
        "bestBidQuantityE9": best_bid[1],
        "bestAskPriceE9": best_ask[0],
        "bestAskQuantityE9": best_ask[1],
        "bidsE9": bids,
        "asksE9": asks,
    }


def partial_depth(engine: Engine, symbol: str, levels: int, at: int) -> dict[str, Any]:
    """OrderbookPartialDepthUpdate (market stream; depthLevel as a string, e.g. "5")."""
    bids, asks = book(engine, symbol, levels)
    return {
        "updatedAtMillis": at,
        "symbol": symbol,
        "bidsE9": bids,
        "asksE9": asks,
        "orderbookUpdateId": engine.book_updates,
        "depthLevel": str(levels),
    }


def diff_depth(engine: Engine, symbol: str, at: int) -> dict[str, Any]:
    """OrderbookDiffDepthUpdate (market stream): the whole simple book each time."""
    bids, asks = book(engine, symbol, 20)
    return {
        "updatedAtMillis": at,
        "symbol": symbol,
        "bidsE9": bids,
        "asksE9": asks,
        "firstUpdateId": engine.book_updates,
        "lastUpdateId": engine.book_updates,
    }


def _direction(now: int, before: int) -> int:
    return (now > before) - (now < before)


def ticker(engine: Engine, symbol: str, at: int) -> dict[str, Any]:
    """TickerResponse / TickerUpdate (the fake has one price: last = mark = oracle = market)."""
    price = engine.price(symbol)
    direction = _direction(price, engine.previous_price[symbol])
    day = [engine.minute(symbol, i) for i in range(max(0, engine.cursor - 1439), engine.cursor + 1)]
    window = aggregate(day)
    bids, asks = book(engine, symbol, 1)
    last = engine.tape[symbol][0]
    history = engine.funding_history(symbol)
    rates = [int(h["fundingRateE9"]) for h in history[:8]] or [0]
    hour = engine.market_time() // 3_600_000 * 3_600_000
    open_interest = sum(
        abs(a.positions[symbol].size) for a in engine.accounts.values() if symbol in a.positions
    )
    change = price - window.open
    return {
        "symbol": symbol,
        "lastQuantityE9": last["quantityE9"],
        "lastTimeAtMillis": last["executedAtMillis"],
        "lastPriceE9": str(price),
        "lastFundingRateE9": str(rates[0]),
        "nextFundingTimeAtMillis": hour + 3_600_000,
        "avgFundingRate8hrE9": str(sum(rates) // len(rates)),
        "oraclePriceE9": str(price),
        "oraclePriceDirection": direction,
        "markPriceE9": str(price),
        "markPriceDirection": direction,
        "marketPriceE9": str(price),
        "marketPriceDirection": direction,
        "bestBidPriceE9": bids[0][0] if bids else "0",
        "bestBidQuantityE9": bids[0][1] if bids else "0",
        "bestAskPriceE9": asks[0][0],
        "bestAskQuantityE9": asks[0][1],
        "openInterestE9": str(open_interest),
        "highPrice24hrE9": str(window.high),
        "lowPrice24hrE9": str(window.low),
        "volume24hrE9": str(window.volume),
        "quoteVolume24hrE9": str(window.quote_volume),
        "closePrice24hrE9": str(day[0].close),
        "openPrice24hrE9": str(window.open),
        "closeTime24hrAtMillis": engine.candle_time(day[-1]) + 59_999,
        "openTime24hrAtMillis": engine.candle_time(day[0]),
        "firstId24hr": 1,
        "lastId24hr": window.trades,
        "count24hr": str(window.trades),
        "priceChange24hrE9": str(change),
        "priceChangePercent24hrE9": str(change * 100 * E9 // window.open),
        "updatedAtMillis": at,
        "estimatedFundingRateE9": str(funding_rate_e9(symbol, hour)),
    }


def price_update(symbol: str, price: int, source: str, at: int) -> dict[str, Any]:
    """OraclePriceUpdate / MarkPriceUpdate / MarketPriceUpdate (``source`` Oracle | Mark | Market)."""
    return {"symbol": symbol, "priceE9": str(price), "source": source, "updatedAtMillis": at}


# --- candles -------------------------------------------------------------------------------------------
MINUTES = {
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "4h": 240,
    "6h": 360,
    "8h": 480,
    "12h": 720,
    "1d": 1440,
    "1w": 10_080,
    "1Mo": 44_640,
}


def minute_candle(engine: Engine, symbol: str, index: int) -> Candle:
    """The 1-minute candle at ``index`` on the fake's candle clock (the open one with any price override)."""
    candle = engine.minute(symbol, index)
    return Candle(
        engine.candle_time(candle),
        candle.open,
        candle.high,
        candle.low,
        candle.close,
        candle.volume,
        candle.quote_volume,
        candle.trades,
    )


def candles_between(engine: Engine, symbol: str, interval: str, first: int, last: int) -> list[Candle]:
    """The ``interval`` candles of the minutes ``first``..``last`` (indexes), oldest first. The first and
    last buckets are complete (widened to the whole bucket, never past the open candle)."""
    first = _bucket_edge(engine, symbol, interval, first, -1)
    last = _bucket_edge(engine, symbol, interval, last, 1)
    out: list[Candle] = []
    group: list[Candle] = []
    for index in range(first, last + 1):
        candle = minute_candle(engine, symbol, index)
        if group and bucket_start(interval, candle.start) != bucket_start(interval, group[0].start):
            out.append(_merge(interval, group))
            group = []
        group.append(candle)
    if group:
        out.append(_merge(interval, group))
    return out


def _bucket_edge(engine: Engine, symbol: str, interval: str, index: int, step: int) -> int:
    """Walk from ``index`` to the first (step -1) or last (step 1) released minute of its bucket."""
    series = engine.candles[symbol]
    start = bucket_start(interval, series[index].start + engine.time_offset)
    while 0 <= index + step <= engine.cursor:
        if bucket_start(interval, series[index + step].start + engine.time_offset) != start:
            break
        index += step
    return index


def _merge(interval: str, group: list[Candle]) -> Candle:
    merged = aggregate(group)
    return Candle(
        bucket_start(interval, merged.start),
        merged.open,
        merged.high,
        merged.low,
        merged.close,
        merged.volume,
        merged.quote_volume,
        merged.trades,
    )


def bucket_at(engine: Engine, symbol: str, interval: str, index: int) -> Candle:
    """The ``interval`` candle holding the minute at ``index`` (as far as released)."""
    return candles_between(engine, symbol, interval, index, index)[0]


def candle_row(interval: str, candle: Candle) -> list[str]:
    """[openTime, open, high, low, close, volume, closeTime, quoteVolume, numTrades], all strings."""
    return [
        str(candle.start),
        str(candle.open),
        str(candle.high),
        str(candle.low),
        str(candle.close),
        str(candle.volume),
        str(bucket_end(interval, candle.start)),
        str(candle.quote_volume),
        str(candle.trades),
    ]


def candle_update(symbol: str, interval: str, candle: Candle) -> dict[str, Any]:
    """CandlestickUpdate (market stream)."""
    return {
        "symbol": symbol,
        "startTime": candle.start,
        "endTime": bucket_end(interval, candle.start),
        "interval": interval,
        "openPriceE9": str(candle.open),
        "closePriceE9": str(candle.close),
        "highPriceE9": str(candle.high),
        "lowPriceE9": str(candle.low),
        "volumeE9": str(candle.volume),
        "quoteVolumeE9": str(candle.quote_volume),
        "numTrades": candle.trades,
    }

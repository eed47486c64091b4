"""The dashboard's charts, read-only: candles with their indicators, what to draw over them, the equity curve.

``GET /api/candles?symbol=&timeframe=&limit=``: the market state's recent closed candles of one timeframe,
oldest first, each with EMA 20/50 and the Bollinger bands as they were when it closed.
``GET /api/chart/overlays?symbol=&timeframe=``: entries and exits of the journal's trades and of the open
position as markers (their times put on the start of the candle they fall in), and the working stop and
targets (and the open entry) as price lines.
``GET /api/equity``: the equity curve rebuilt from the closed trades (so it survives restarts), its
drawdown at each point, and the account's equity now.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
from flask import Flask, jsonify, request
from sqlalchemy import select

from agent.analytics.live import trade_records
from agent.analytics.performance import equity_from_trades
from agent.engine.engine import Engine
from shared.db import Database, OrderRow, PositionRow, TradeRow
from shared.marketdata.candles import TIMEFRAMES
from shared.marketdata.snapshot import RECENT_CANDLES, MarketState
from shared.models import OrderStatus
from shared.notify import TARGET_ROLES
from shared.symbols import normalise_symbol

CHART_INDICATORS = ("ema_20", "ema_50", "bb_upper", "bb_mid", "bb_lower")
DEFAULT_CANDLES = 300
MARKER_TRADES = 200
STOP_ROLE = "stop_loss"
WORKING = (OrderStatus.PENDING_SUBMIT, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
Problem = dict[str, str]


def _epoch(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp())


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _invalid(details: list[Problem]) -> Any:
    return jsonify(error="invalid query", details=details), 400


def _market(engine: Engine, details: list[Problem]) -> MarketState | None:
    raw = request.args.get("symbol", "")
    known = ", ".join(engine.markets)
    try:
        symbol = normalise_symbol(raw)
    except ValueError:
        symbol = ""
    market = engine.markets.get(symbol)
    if market is None:
        details.append({"field": "symbol", "message": f"must be one of {known} (got {raw!r})"})
    return market


def _timeframe(market: MarketState | None, details: list[Problem]) -> str:
    raw = request.args.get("timeframe", market.base_timeframe if market else "")
    if market is not None and raw not in market.timeframes:
        details.append({"field": "timeframe", "message": f"must be one of {', '.join(market.timeframes)}"})
    return raw


def _candle_limit(details: list[Problem]) -> int:
    raw = request.args.get("limit", str(DEFAULT_CANDLES))
    if not raw.isdigit() or not 1 <= int(raw) <= RECENT_CANDLES:
        details.append({"field": "limit", "message": f"must be an integer from 1 to {RECENT_CANDLES}"})
        return 0
    return int(raw)


def candles_view(market: MarketState, timeframe: str, limit: int) -> dict[str, Any]:
    candles = []
    for candle, indicators in market.recent(timeframe, limit):
        row: dict[str, Any] = {
            "time": _epoch(candle.open_time), "open": candle.open, "high": candle.high, "low": candle.low,
            "close": candle.close, "volume": candle.volume,
        }  # fmt: skip
        row |= {name: _finite(indicators.get(name)) for name in CHART_INDICATORS}
        candles.append(row)
    return {
        "symbol": market.symbol,
        "timeframe": timeframe,
        "timeframes": list(market.timeframes),
        "source": market.source,
        "stale": market.stale,
        "candles": candles,
    }


def _marker(moment: datetime, bucket_s: int, kind: str, side: str, price: float, text: str) -> dict[str, Any]:
    at = _epoch(moment)
    return {"time": at - at % bucket_s, "at": at, "kind": kind, "side": side, "price": price, "text": text}


def overlays_view(db: Database, symbol: str, timeframe: str) -> dict[str, Any]:
    bucket_s = TIMEFRAMES[timeframe]
    markers: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    with db.session() as session:
        trades = session.scalars(
            select(TradeRow)
            .where(TradeRow.symbol == symbol)
            .order_by(TradeRow.id.desc())
            .limit(MARKER_TRADES)
        )
        for t in trades:
            long = t.side == "BUY"
            markers.append(
                _marker(t.opened_at, bucket_s, "entry", t.side, t.entry_price, "long" if long else "short")
            )
            markers.append(
                _marker(t.closed_at, bucket_s, "exit", "SELL" if long else "BUY", t.exit_price,
                        f"exit {t.exit_reason or ''}".strip())
            )  # fmt: skip
        position = session.scalar(
            select(PositionRow).where(PositionRow.symbol == symbol, PositionRow.quantity != 0)
        )
        if position is not None:
            side = "BUY" if position.quantity > 0 else "SELL"
            text = "long" if position.quantity > 0 else "short"
            if position.opened_at is not None:
                markers.append(
                    _marker(position.opened_at, bucket_s, "entry", side, position.entry_price, text)
                )
            lines.append({"kind": "entry", "price": position.entry_price, "title": f"entry {text}"})
        orders = session.scalars(
            select(OrderRow)
            .where(OrderRow.symbol == symbol, OrderRow.status.in_([s.value for s in WORKING]))
            .where(OrderRow.role.in_([STOP_ROLE, *TARGET_ROLES]))
            .order_by(OrderRow.id)
        )
        for order in orders:
            price = order.trigger_price if order.trigger_price is not None else order.limit_price
            if price is None:
                continue
            kind = "stop" if order.role == STOP_ROLE else "target"
            lines.append({"kind": kind, "price": price, "title": order.role.replace("_", " "),
                          "client_id": order.client_id})  # fmt: skip
    markers.sort(key=lambda m: (m["time"], m["at"]))
    return {"symbol": symbol, "timeframe": timeframe, "markers": markers, "price_lines": lines}


def equity_view(db: Database, engine: Engine, starting_equity: float) -> dict[str, Any]:
    curve = equity_from_trades(trade_records(db), starting_equity)
    values = curve.to_numpy(dtype=float)
    # below the running peak, the starting equity counting as the first peak (a trade opened and closed in
    # the same instant leaves no starting point on the curve)
    peaks = np.maximum.accumulate(np.maximum(values, starting_equity)) if len(values) else values
    points = [
        {"time": int(moment.timestamp()), "equity": float(value), "drawdown": float(value / peak - 1)}
        for moment, value, peak in zip(curve.index, values, peaks, strict=True)
    ]
    account = engine.exchange.account()
    return {
        "starting_equity": starting_equity,
        "points": points,
        "current": {"time": _epoch(engine.market_now()), "equity": account.equity},
    }


def register_chart_routes(app: Flask, db: Database, engine: Engine, starting_equity: float) -> None:
    @app.get("/api/candles")
    def candles() -> Any:
        details: list[Problem] = []
        market = _market(engine, details)
        timeframe = _timeframe(market, details)
        limit = _candle_limit(details)
        if details or market is None:
            return _invalid(details)
        return jsonify(candles_view(market, timeframe, limit))

    @app.get("/api/chart/overlays")
    def overlays() -> Any:
        details: list[Problem] = []
        market = _market(engine, details)
        timeframe = _timeframe(market, details)
        if details or market is None:
            return _invalid(details)
        return jsonify(overlays_view(db, market.symbol, timeframe))

    @app.get("/api/equity")
    def equity() -> Any:
        return jsonify(equity_view(db, engine, starting_equity))

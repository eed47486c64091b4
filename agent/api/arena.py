"""``GET /api/arena``: the leaderboard of the shadow books (``agent.arena``), and
``GET /api/arena/signals/<id>``: what each shadow book did with one signal (the trades it opened or
closed)."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify

from agent.analytics.live import trade_records
from agent.arena.leaderboard import arena_report, shadow_trades
from agent.engine.engine import Engine
from shared.db import Database


def register_arena_routes(app: Flask, db: Database, engine: Engine, starting_equity: float) -> None:
    @app.get("/api/arena")
    def arena() -> Any:
        marks = {s: m for s in engine.feeds if (m := engine.exchange.mark_price(s)) is not None}
        pnl = sum(t.pnl for t in trade_records(db))  # the real book's closed trades
        arena = engine.decisions.arena
        arena.load()
        report = arena_report(db, arena.names, starting_equity, pnl, marks, engine.market_now())
        return jsonify(report)

    @app.get("/api/arena/signals/<int:signal_id>")
    def arena_signal(signal_id: int) -> Any:
        return jsonify(signal_id=signal_id, trades=shadow_trades(db, signal_id=signal_id))

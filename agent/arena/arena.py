"""``Arena``: the shadow books of every analyst, fed the same signals as the engine and the same candles.

For each signal the engine decides, every analyst of the arena decides it too (the ``follow`` baseline, the
raw signal, always; the engine's own analyst reuses the engine's decision, so it is not asked twice; those of
``AI_SHADOW_ANALYSTS``), and the same risk gate sizes it on that analyst's shadow book (its position there;
the account's equity, the market's facts and the source's record as the engine saw them; never blocked by
the state of our real orders, so a signal vetoed or held for the real book shows what it would have made).
An approved entry opens a paper position at the decision price; stops, targets, closes and reversals close it
(``agent.arena.book``). Nothing here places an order. Every shadow trade is a row of ``shadow_trades``, so
the books survive a restart and each decision's outcomes can be shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import select

from agent.analysis.base import Analyst, MarketContext
from agent.analysis.follow import FollowAnalyst
from agent.arena.book import ShadowExit, ShadowPosition, candle_exit, close_at_market, market_fill
from agent.risk.gate import RiskContext, assess
from agent.risk.presets import RiskPolicy
from shared.db import Database, ShadowTradeRow
from shared.errors import BluefinAIError
from shared.logs import log_event
from shared.marketdata.feeds import ReplayFeed
from shared.models import Candle, Decision, DecisionAction, Position, Side, Signal

logger = logging.getLogger(__name__)
BASELINE = "follow"


class Arena:
    """Shadow books by analyst name (see the module docstring)."""

    def __init__(self, db: Database, engine_analyst: str = "") -> None:
        self.db = db
        self.engine_analyst = engine_analyst  # its shadow book takes the engine's own decisions
        self.analysts: dict[str, Analyst] = {BASELINE: FollowAnalyst()}
        self.open: dict[str, dict[str, ShadowPosition]] = {}  # analyst -> symbol -> position
        self._seen: dict[str, float] = {}  # symbol -> open time (epoch s) of the last candle folded
        self._loaded = False

    def add(self, name: str, analyst: Analyst) -> None:
        self.analysts[name] = analyst

    @property
    def names(self) -> list[str]:
        """The baseline first, then the engine's analyst, then the shadows (each once)."""
        names = [BASELINE, self.engine_analyst, *self.analysts]
        return [n for n in dict.fromkeys(names) if n]

    def load(self) -> None:
        """The open shadow positions from the database (after a restart), once."""
        if self._loaded:
            return
        self._loaded = True
        with self.db.session() as session:
            rows = list(session.scalars(select(ShadowTradeRow).where(ShadowTradeRow.status == "OPEN")))
        for row in rows:
            self.open.setdefault(row.analyst, {})[row.symbol] = position_from_row(row)

    # decisions -----------------------------------------------------------------------------------------
    def decide(
        self,
        signal_id: int,
        signal: Signal,
        decision: Decision,
        context: RiskContext,
        policy: RiskPolicy,
        market_context: Callable[[Analyst], MarketContext],
        now: datetime,
    ) -> dict[str, Decision]:
        """Every analyst's decision on the signal, each acted on in its own shadow book."""
        self.load()
        decided: dict[str, Decision] = {}
        if context.price <= 0:
            return decided
        for name in self.names:
            mine = decision if name == self.engine_analyst else self._ask(name, signal, market_context)
            decided[name] = mine
            self._act(name, signal_id, signal, mine, context, policy, now)
        return decided

    def _ask(self, name: str, signal: Signal, market_context: Callable[[Analyst], MarketContext]) -> Decision:
        analyst = self.analysts[name]
        try:
            return analyst.decide(signal, market_context(analyst))
        except BluefinAIError as exc:
            log_event(logger, "shadow_analyst_failed", logging.WARNING, analyst=name, error=str(exc))
            return Decision(DecisionAction.HOLD, 0.0, f"analyst {name} failed: {exc}", "engine")

    def _act(
        self, name: str, signal_id: int, signal: Signal, decision: Decision, context: RiskContext,
        policy: RiskPolicy, now: datetime,
    ) -> None:  # fmt: skip
        symbol = signal.symbol
        book = self.open.setdefault(name, {})
        held = book.get(symbol)
        quantity = 0.0 if held is None else held.quantity * held.side.sign
        shadow = replace(
            context,
            position=Position(symbol, quantity, held.entry_price if held else 0.0),
            blocked="", trading_state="ACTIVE", state_reason="",
            other_notionals={s: p.quantity * p.side.sign * p.entry_price for s, p in book.items()
                             if s != symbol},
        )  # fmt: skip
        verdict = assess(decision, signal, shadow, policy)
        if not verdict.approved or verdict.side is None:
            return
        price = context.price
        if held is not None and verdict.side is held.side.opposite():
            reason = verdict.exit_kind if verdict.reduce_only else "signal_reversed"
            self._close(held, close_at_market(held, price, reason or "close_signal", now), signal_id)
            del book[symbol]
        if verdict.reduce_only:
            return
        size = round(verdict.quantity - abs(quantity) if held is not None and held.side is not verdict.side
                     else verdict.quantity, 9)  # fmt: skip
        if size <= 0:
            return
        book[symbol] = self._open(name, signal_id, symbol, verdict.side, size, price, verdict.stop_price,
                                  verdict.take_profit, context, now)  # fmt: skip

    def _open(
        self, name: str, signal_id: int, symbol: str, side: Side, quantity: float, price: float,
        stop: float | None, target: float | None, context: RiskContext, now: datetime,
    ) -> ShadowPosition:  # fmt: skip
        entry = market_fill(price, side, context.slippage_bps)
        risk = None if stop is None else abs(entry - stop) * quantity
        row = ShadowTradeRow(
            analyst=name, signal_id=signal_id, symbol=symbol, side=side.value, quantity=quantity,
            entry_price=entry, opened_at=now, stop_price=stop, take_profit=target, initial_risk=risk,
            taker_fee=context.taker_fee, slippage_bps=context.slippage_bps, status="OPEN", exit_reason="",
            fees=context.taker_fee * quantity * entry, pnl=0.0,
        )  # fmt: skip
        with self.db.session() as session:
            session.add(row)
            session.flush()
            row_id = row.id
        log_event(logger, "shadow_opened", analyst=name, signal_id=signal_id, symbol=symbol, side=side.value,
                  quantity=quantity, price=entry)  # fmt: skip
        return ShadowPosition(row_id, name, signal_id, symbol, side, quantity, entry, now, stop, target,
                              context.taker_fee, context.slippage_bps)  # fmt: skip

    def _close(self, position: ShadowPosition, done: ShadowExit, signal_id: int | None = None) -> None:
        with self.db.session() as session:
            row = session.get(ShadowTradeRow, position.row_id)
            if row is not None:
                row.status, row.exit_price, row.closed_at = "CLOSED", done.price, done.at
                row.exit_reason, row.fees, row.pnl = done.reason, done.fees, done.pnl
                row.close_signal_id = signal_id
        log_event(logger, "shadow_closed", analyst=position.analyst, symbol=position.symbol,
                  reason=done.reason, price=done.price, pnl=round(done.pnl, 6))  # fmt: skip

    # candles ---------------------------------------------------------------------------------------------
    def on_candle(self, candle: Candle, close_time: datetime) -> None:
        """A closed candle: the stops and targets it reached close their shadow positions."""
        self._seen[candle.symbol] = candle.open_time.timestamp()
        if not any(candle.symbol in book for book in self.open.values()):
            return
        for book in self.open.values():
            held = book.get(candle.symbol)
            if held is None or close_time <= held.opened_at:
                continue
            done = candle_exit(held, candle.open, candle.high, candle.low, close_time)
            if done is not None:
                self._close(held, done)
                del book[candle.symbol]

    def catch_up(self, feed: ReplayFeed) -> None:
        """The candles a backtest's fast-forward skipped (up to the feed's cursor), folded in order."""
        symbol = feed.symbol
        end = feed.cursor
        seen = self._seen.get(symbol)
        start = 0 if seen is None else int(np.searchsorted(feed.open_stamps[:end], seen, side="right"))
        if end <= start:
            return
        self._seen[symbol] = float(feed.open_stamps[end - 1])
        step = timedelta(seconds=feed.interval_s)
        for book in self.open.values():
            held = book.get(symbol)
            if held is None:
                continue
            first = max(
                start, int(np.searchsorted(feed.open_stamps[:end], held.opened_at.timestamp(), "left"))
            )
            rows = feed.ohlcv[first:end]
            long = held.side is Side.BUY
            hit = np.zeros(len(rows), dtype=bool)
            if held.stop is not None:
                hit |= rows[:, 2] <= held.stop if long else rows[:, 1] >= held.stop
            if held.target is not None:
                hit |= rows[:, 1] >= held.target if long else rows[:, 2] <= held.target
            touched = np.flatnonzero(hit)
            if not len(touched):
                continue
            index = first + int(touched[0])
            o, h, low = (float(v) for v in feed.ohlcv[index, :3])
            opened = datetime.fromtimestamp(float(feed.open_stamps[index]), UTC)
            done = candle_exit(held, o, h, low, opened + step)
            if done is not None:
                self._close(held, done)
                del book[symbol]


def position_from_row(row: ShadowTradeRow) -> ShadowPosition:
    opened = row.opened_at if row.opened_at.tzinfo else row.opened_at.replace(tzinfo=UTC)
    return ShadowPosition(
        row.id, row.analyst, row.signal_id, row.symbol, Side(row.side), row.quantity, row.entry_price, opened,
        row.stop_price, row.take_profit, row.taker_fee, row.slippage_bps,
    )  # fmt: skip

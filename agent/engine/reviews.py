"""AI position reviews in the engine: when a trigger fires (``review_triggers``), the AI analyst reviews the
position (``agent.analysis.review``) and its answer goes through the same rules as a trader's buttons
(``position_actions``): a close or reduce as a reduce-only market order (exit reason ``ai_review``), a stop
moved only towards the price; a refusal changes nothing. Every review is a ``position_reviews`` row (why,
the answer, the outcome with the refusing rule, the order placed, the AI call and its cost), served by
``GET /api/reviews`` and with its entry decision in ``GET /api/decisions/<id>``.

Only with REVIEW_EXITS and an AI analyst (claude, perplexity, openai-compatible). The rules analyst keeps
its own review (``Engine.review``, on 15m closes); ``follow`` has no reviewer: it holds to its plan (said
once at start). The AI is asked outside the engine's lock; the action takes it. The triggers' state (what
fired, the last review) is kept in ``engine_state`` so a restart neither fires an event again nor restarts
the timer.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.analysis.review import AIReviewer, ReviewContext, ReviewOutcome, build_reviewer
from agent.engine.position_actions import ActionInputError, ActionRefused, PositionActions
from agent.engine.positions import EPS, MarketView, Plan, QuietLimits
from agent.engine.review_triggers import MarketFacts, PositionFacts, ReviewTriggers, Trigger
from shared.db import PositionReviewRow
from shared.logs import log_event
from shared.models import OrderStatus, Position

if TYPE_CHECKING:
    from agent.engine.engine import Engine

logger = logging.getLogger(__name__)
AI_REVIEW_EXIT = "ai_review"
STATE_KEY = "review_triggers:"  # engine_state: each market's trigger state, kept across a restart


class PositionReviews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        policy = engine.policy
        self.reviewer: AIReviewer | None = build_reviewer(engine.analyst) if policy.review_exits else None
        self.triggers = ReviewTriggers(policy.review_minutes, policy.review_funding_rate)
        self.actions = PositionActions(engine)
        self._restored: set[str] = set()  # markets whose trigger state was read back after a start

    @property
    def active(self) -> bool:
        return self.reviewer is not None

    def announce(self) -> None:
        """Say at start what REVIEW_EXITS does with this analyst (never silently nothing)."""
        engine, policy = self.engine, self.engine.policy
        name = engine.analyst.name
        if not policy.review_exits:
            return
        if self.reviewer is not None:
            log_event(logger, "ai_reviews_on", analyst=name, minutes=policy.review_minutes,
                      funding_rate=policy.review_funding_rate)  # fmt: skip
        elif getattr(engine.analyst, "review", None) is None:
            log_event(
                logger, "review_exits_no_effect", logging.WARNING, analyst=name,
                reason=f"REVIEW_EXITS has no effect for {name}: it has no reviewer and holds to its plan",
            )  # fmt: skip

    # --- every candle ------------------------------------------------------------------------------------
    def _facts(self, plan: Plan) -> PositionFacts:
        key = plan.entry_client_id or f"{plan.symbol}:{plan.opened_at.isoformat()}"
        return PositionFacts(key, plan.sign, plan.entry_price, plan.risk_per_unit, plan.take_profit,
                             plan.opened_at, plan.regime)  # fmt: skip

    def _held(self, symbol: str) -> tuple[Plan, float] | None:
        plan = self.engine.manager.plan(symbol)
        with self.engine.store.transaction() as records:
            row = records.position(symbol)
            held = row.quantity if row is not None else 0.0
        if plan is None or abs(held) < EPS or not plan.holds(held):
            return None
        return plan, held

    def on_candle(self, symbol: str, view: MarketView) -> PositionReviewRow | None:
        """Fire the position's triggers on this candle; review it when one fires. The review's row."""
        engine = self.engine
        if self.reviewer is None or engine.status.state != "running":
            return None
        self._restore(symbol)
        held = self._held(symbol)
        if held is None:
            if self.triggers.saved(symbol) is not None:
                self.triggers.forget(symbol)
                self._save(symbol)
            return None
        plan, quantity = held
        facts = self._facts(plan)
        funding = view.funding.rate if view.funding is not None else None
        before = self.triggers.saved(symbol)
        fired = self.triggers.due(
            symbol, facts, MarketFacts(view.now, view.candle.close, funding, engine.regime(symbol))
        )
        if self.triggers.saved(symbol) != before:  # fired, re-armed, a new regime or a new position
            self._save(symbol)
        return self.review(symbol, plan, quantity, view, fired) if fired else None

    def _restore(self, symbol: str) -> None:
        """After a start, the market's triggers as they were (no event fires twice, the timer goes on)."""
        if symbol in self._restored:
            return
        self._restored.add(symbol)
        with self.engine.store.transaction() as records:
            saved = records.state(STATE_KEY + symbol)
        if saved:
            self.triggers.restore(symbol, saved)

    def _save(self, symbol: str) -> None:
        with self.engine.store.transaction() as records:
            records.set_state(STATE_KEY + symbol, self.triggers.saved(symbol))

    def quiet_limits(self, symbol: str, limits: QuietLimits) -> QuietLimits:
        """The manager's quiet limits of a backtest's fast-forward, narrowed by the review triggers: the
        prices and the time at which one fires, and the closes a regime change needs."""
        if self.reviewer is None or limits.blocked:
            return limits
        held = self._held(symbol)
        if held is None:
            return limits
        band = self.triggers.quiet(symbol, self._facts(held[0]))
        at = min((t for t in (limits.at, band.at) if t is not None), default=None)
        timeframes = limits.timeframes | {"1h", self.engine.regime_timeframe(symbol)}
        return replace(limits, up=min(limits.up, band.up), down=max(limits.down, band.down), at=at,
                       timeframes=frozenset(timeframes))  # fmt: skip

    # --- one review ------------------------------------------------------------------------------------
    def review(
        self, symbol: str, plan: Plan, quantity: float, view: MarketView, fired: list[Trigger]
    ) -> PositionReviewRow:
        assert self.reviewer is not None
        context = self._context(symbol, plan, quantity, view, fired)
        outcome = self.reviewer.review(context)
        row = PositionReviewRow(
            symbol=symbol, side=plan.side, entry_client_id=plan.entry_client_id, decision_id=plan.decision_id,
            analyst=self.reviewer.name, triggers=[t.name for t in fired], action="", reason="",
            outcome=outcome.status, rule="", detail=outcome.problem, client_id="", ai_call_id=outcome.call_id,
            cost_usd=outcome.cost_usd, prompt_hash=outcome.prompt_hash, market_time=view.now,
        )  # fmt: skip
        if outcome.answer is not None:
            self._act(row, outcome, view.now)
        with self.engine.db.session() as session:
            session.add(row)
        log_event(
            logger, "position_reviewed", symbol=symbol, analyst=row.analyst, triggers=row.triggers,
            action=row.action, outcome=row.outcome, rule=row.rule, detail=row.detail[:300],
        )  # fmt: skip
        return row

    def _act(self, row: PositionReviewRow, outcome: ReviewOutcome, now: datetime) -> None:
        answer = outcome.answer
        assert answer is not None
        row.action, row.reason, row.fraction, row.new_stop = (
            answer.action,
            answer.reason,
            answer.fraction,
            answer.new_stop,
        )
        why = f"AI review ({row.analyst}): {answer.reason}"
        request = hashlib.sha256(f"{row.entry_client_id}:{now.isoformat()}:{outcome.prompt_hash}".encode())
        try:
            if answer.action == "hold":
                row.outcome = "held"
                return
            if answer.action == "move_stop":
                result = self.actions.move_stop(row.symbol, answer.new_stop, why)
                row.detail = f"stop moved to {result.stop:,.2f}" if result.stop is not None else "stop moved"
            else:
                fraction = 1.0 if answer.action == "close" else answer.fraction
                result = self.actions.close(
                    row.symbol, fraction, why, request.hexdigest()[:40], AI_REVIEW_EXIT
                )
                row.client_id = result.client_id
                row.detail = f"{result.quantity:g} closed by {result.client_id} ({result.status})"
            row.outcome = "done"
        except ActionRefused as exc:
            row.outcome, row.rule, row.detail = "refused", exc.rule, str(exc)
        except ActionInputError as exc:
            row.outcome, row.rule, row.detail = "refused", "input", str(exc)

    def _context(
        self, symbol: str, plan: Plan, quantity: float, view: MarketView, fired: list[Trigger]
    ) -> ReviewContext:
        engine = self.engine
        close, sign, entry_price = view.candle.close, plan.sign, plan.entry_price
        with engine.store.transaction() as records:
            _, decision, _ = records.latest_entry(symbol, plan.side)
            fills = records.fills(plan.entry_client_id) if plan.entry_client_id else []
            children = records.children(plan.entry_client_id) if plan.entry_client_id else []
            shown_fills = [
                {"side": f.side, "quantity": f.quantity, "price": f.price, "fee": f.fee} for f in fills
            ] + [
                {"role": o.role, "side": o.side, "quantity": o.filled_quantity, "price": o.price}
                for o in children if o.status == OrderStatus.FILLED.value or o.filled_quantity > 0
            ]  # fmt: skip
            entry_shown: dict[str, Any] = (
                {"analyst": decision.analyst, "action": decision.action, "confidence": decision.confidence,
                 "rationale": decision.rationale, "stop_loss": decision.stop_loss,
                 "take_profit": decision.take_profit}
                if decision is not None else {"rationale": "no entry decision on record"}
            )  # fmt: skip
        risk = plan.risk_per_unit
        since = view.candle.open_time
        # the worst price of the last HISTORY_CANDLES minutes held (the best is the plan's, since the entry)
        held_through = [c for c in engine.recent_candles(symbol) if c.open_time >= plan.opened_at]
        worst = (
            min((c.low for c in held_through), default=close)
            if sign > 0
            else max((c.high for c in held_through), default=close)
        )
        mfe, mae = (plan.best_price - entry_price) * sign, min(0.0, (worst - entry_price) * sign)
        shown_since = {
            "price": close, "minutes_open": round((view.now - plan.opened_at).total_seconds() / 60, 1),
            "unrealised_pnl": round((close - entry_price) * sign * abs(quantity), 4),
            "r_now": round((close - entry_price) * sign / risk, 3) if risk > 0 else None,
            "best_price": plan.best_price, "mfe": round(mfe, 4), "mae": round(mae, 4),
            "mfe_r": round(mfe / risk, 3) if risk > 0 else None,
            "mae_r": round(mae / risk, 3) if risk > 0 else None,
            "partials_taken": plan.partials_done, "fills": shown_fills, "as_of": since.isoformat(),
        }  # fmt: skip
        positions = engine.decisions.books(symbol).positions
        market = engine.decisions.market_context(symbol, close, positions)
        market = replace(market, position=positions.get(symbol, Position(symbol, quantity, entry_price)))
        return ReviewContext(
            symbol=symbol, key=f"{symbol}:{plan.entry_client_id}",
            triggers=[f"{t.name}: {t.detail}" for t in fired],
            position={"side": "long" if sign > 0 else "short", "quantity": abs(quantity),
                      "entry_price": entry_price, "opened_at": plan.opened_at.isoformat()},
            plan={"stop": plan.stop_price, "stop_kind": plan.stop_kind, "initial_stop": plan.initial_stop,
                  "take_profit": plan.take_profit, "risk_per_unit": risk,
                  "trailing_active": plan.trailing_active},
            entry=entry_shown, since=shown_since, market=market,
        )  # fmt: skip

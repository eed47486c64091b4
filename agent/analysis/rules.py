"""``RulesAnalyst``: a deterministic, offline, multi-factor technical check of incoming signals.

An entry signal is confirmed unless the market argues clearly against it:
- momentum extreme: RSI(14) above ``overbought`` for a buy, below ``oversold`` for a sell;
- trend against: EMA20 and EMA50 ordered against the trade *and* the MACD histogram on the same side.
Confidence starts at 0.5 and moves with trend agreement, MACD and room left in RSI, then by 0.05 per
factor from the market snapshot when one is given: the 15m and 1h trends (with or against), volatility
regime (high: less sure), volume confirmation (relative volume above 1.5), a support/resistance level
within 0.3 % in the way, order-book imbalance, and funding that makes the position expensive to carry.
The rationale names every value it used. A close signal closes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from agent.analysis.base import Analyst, MarketContext
from shared.indicators import compute
from shared.marketdata.snapshot import MarketState
from shared.models import Decision, DecisionAction, Side, Signal, SignalAction

MIN_CANDLES = 60


class RulesAnalyst(Analyst):
    name = "rules"
    local = True

    def __init__(self, overbought: float = 75.0, oversold: float = 25.0) -> None:
        self.overbought = overbought
        self.oversold = oversold

    def decide(self, signal: Signal, context: MarketContext) -> Decision:
        if signal.action is SignalAction.CLOSE:
            return Decision(DecisionAction.CLOSE, 1.0, "close signal: exit the position", self.name)
        seen, last = self._latest(context)
        if seen < MIN_CANDLES:
            return Decision(
                DecisionAction.HOLD, 0.0, f"only {seen} candles of history (< {MIN_CANDLES})", self.name
            )
        factors = {
            k: float(last[k]) for k in ("rsi", "ema_20", "ema_50", "macd_hist") if not math.isnan(last[k])
        }
        if len(factors) < 4:
            return Decision(DecisionAction.HOLD, 0.0, "indicators not warmed up", self.name, factors=factors)
        going_long = signal.action is SignalAction.BUY
        rsi, ema_fast, ema_slow, hist = (
            factors["rsi"],
            factors["ema_20"],
            factors["ema_50"],
            factors["macd_hist"],
        )
        direction = 1.0 if going_long else -1.0
        trend = direction * (ema_fast - ema_slow)
        momentum = direction * hist
        described = f"RSI14={rsi:.1f}, EMA20={ema_fast:.2f} vs EMA50={ema_slow:.2f}, MACD hist={hist:.3f}"
        if going_long and rsi > self.overbought:
            return self._hold(f"buy rejected: overbought ({described})", factors)
        if not going_long and rsi < self.oversold:
            return self._hold(f"sell rejected: oversold ({described})", factors)
        if trend < 0 and momentum < 0:
            return self._hold(
                f"{signal.action.value} rejected: trend and momentum against ({described})", factors
            )
        confidence = 0.5 + (0.15 if trend > 0 else 0.0) + (0.15 if momentum > 0 else 0.0)
        room = (self.overbought - rsi) if going_long else (rsi - self.oversold)
        confidence += 0.1 * min(max(room / 50.0, 0.0), 1.0)
        adjustment, notes = self._snapshot_factors(direction, context, last, factors)
        confidence = max(0.05, confidence + adjustment)
        action = DecisionAction.OPEN_LONG if going_long else DecisionAction.OPEN_SHORT
        rationale = f"{signal.action.value} confirmed: {described}" + (
            f"; {'; '.join(notes)}" if notes else ""
        )
        return Decision(
            action, round(min(confidence, 0.95), 4), rationale, self.name,
            stop_loss=signal.stop_loss, take_profit=signal.take_profit, factors=factors,
        )  # fmt: skip

    @staticmethod
    def _latest(context: MarketContext) -> tuple[int, Mapping[str, float]]:
        """The indicators of the last closed base candle (1m, or a candle file's coarser interval) and how
        many candles they rest on: from the market state when there is one (kept up to date candle by
        candle), else computed from the candles."""
        view = context.snapshot.base if context.snapshot is not None else None
        if view is not None and view.indicators:
            return view.candles, view.indicators
        if not len(context.candles):
            return 0, {}
        return len(context.candles), compute(context.candles).iloc[-1].to_dict()

    def _snapshot_factors(
        self, direction: float, context: MarketContext, last: Any, factors: dict[str, float]
    ) -> tuple[float, list[str]]:
        """Confidence adjustments (+/-0.05 each) from the wider market, with a note for each."""
        adjustment, notes = 0.0, []

        def vote(value: float, note: str) -> None:
            nonlocal adjustment
            adjustment += value
            notes.append(f"{note} ({value:+.2f})")

        relative_volume = float(last.get("rel_volume", math.nan))
        if not math.isnan(relative_volume):
            factors["rel_volume"] = relative_volume
            if relative_volume > 1.5:
                vote(0.05, f"volume confirms: {relative_volume:.2f}x average")
        snapshot = context.snapshot
        if snapshot is None:
            return adjustment, notes
        wanted = "trending_up" if direction > 0 else "trending_down"
        against = "trending_down" if direction > 0 else "trending_up"
        for timeframe in ("15m", "1h"):
            view = snapshot.timeframes.get(timeframe)
            if view is None or view.trend in ("unknown", "ranging"):
                continue
            if view.trend == wanted:
                vote(0.05, f"{timeframe} {view.trend}")
            elif view.trend == against:
                vote(-0.05, f"{timeframe} {view.trend}")
        base = snapshot.base
        atr = base.indicators.get("atr", math.nan) if base is not None else math.nan
        if not math.isnan(atr) and context.price:
            factors["atr_pct"] = atr / context.price * 100
            if factors["atr_pct"] > 0.3:
                vote(-0.05, f"volatile: ATR {factors['atr_pct']:.2f}% of price")
        for level in snapshot.levels:
            distance = (level.price - context.price) / context.price * direction
            if 0 < distance < 0.003:
                vote(-0.05, f"{level.kind} at {level.price:.2f} ({level.touches} touches) in the way")
                break
        if snapshot.book:
            imbalance = snapshot.book.get("imbalance", 0.0)
            factors["book_imbalance"] = imbalance
            if imbalance * direction > 0.2:
                vote(0.05, f"order book leans with the trade: imbalance {imbalance:+.2f}")
            elif imbalance * direction < -0.2:
                vote(-0.05, f"order book leans against: imbalance {imbalance:+.2f}")
        if snapshot.funding is not None:
            factors["funding_annualised"] = snapshot.funding.annualised
            if snapshot.funding.annualised * direction > 0.3:
                vote(-0.05, f"funding costs {snapshot.funding.annualised:.0%} a year on this side")
        return adjustment, notes

    def review(self, held: Side, market: MarketState, timeframe: str = "15m") -> str | None:
        """The risk view of a held position: exit when, on the last closed candle of ``timeframe``, trend
        (EMA20 vs EMA50) and momentum (MACD histogram) both turned against it; None to keep it."""
        values = market.indicators(timeframe)
        needed = [values.get(k, math.nan) for k in ("ema_20", "ema_50", "macd_hist")]
        if any(math.isnan(v) for v in needed):
            return None
        ema_fast, ema_slow, hist = needed
        if held.sign * (ema_fast - ema_slow) < 0 and held.sign * hist < 0:
            word = "long" if held is Side.BUY else "short"
            return (
                f"{timeframe} trend and momentum turned against the {word}: EMA20={ema_fast:.2f} vs "
                f"EMA50={ema_slow:.2f}, MACD hist={hist:.3f}"
            )
        return None

    def _hold(self, rationale: str, factors: dict[str, float]) -> Decision:
        return Decision(DecisionAction.HOLD, 0.0, rationale, self.name, factors=factors)

"""``RulesAnalyst``: a deterministic, offline technical check of incoming signals.

An entry signal is confirmed unless the market argues clearly against it:
- momentum extreme: RSI(14) above ``overbought`` for a buy, below ``oversold`` for a sell;
- trend against: EMA20 and EMA50 ordered against the trade *and* the MACD histogram on the same side.
Confidence starts at 0.5 and moves with trend agreement, MACD and room left in RSI. A close signal closes.
"""

from __future__ import annotations

import math

from agent.analysis.base import Analyst, MarketContext
from shared.indicators import compute
from shared.models import Decision, DecisionAction, Signal, SignalAction

MIN_CANDLES = 60


class RulesAnalyst(Analyst):
    name = "rules"

    def __init__(self, overbought: float = 75.0, oversold: float = 25.0) -> None:
        self.overbought = overbought
        self.oversold = oversold

    def decide(self, signal: Signal, context: MarketContext) -> Decision:
        if signal.action is SignalAction.CLOSE:
            return Decision(DecisionAction.CLOSE, 1.0, "close signal: exit the position", self.name)
        if len(context.candles) < MIN_CANDLES:
            return Decision(
                DecisionAction.HOLD, 0.0, f"only {len(context.candles)} candles of history (< {MIN_CANDLES})",
                self.name,
            )  # fmt: skip
        last = compute(context.candles).iloc[-1]
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
        action = DecisionAction.OPEN_LONG if going_long else DecisionAction.OPEN_SHORT
        rationale = f"{signal.action.value} confirmed: {described}"
        return Decision(
            action, round(min(confidence, 0.95), 4), rationale, self.name,
            stop_loss=signal.stop_loss, take_profit=signal.take_profit, factors=factors,
        )  # fmt: skip

    def _hold(self, rationale: str, factors: dict[str, float]) -> Decision:
        return Decision(DecisionAction.HOLD, 0.0, rationale, self.name, factors=factors)

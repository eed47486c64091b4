"""``FollowAnalyst`` (AI_MODEL_PROVIDER=follow): the signal as it is. A buy opens a long, a sell a short, a
close closes; the alert's confidence (1.0 when it gives none), stop and target go with it. For traders whose
TradingView strategy already decides: the risk gate and position management still apply in full."""

from __future__ import annotations

from agent.analysis.base import Analyst, MarketContext
from shared.models import Decision, DecisionAction, Signal, SignalAction

ACTIONS = {
    SignalAction.BUY: DecisionAction.OPEN_LONG,
    SignalAction.SELL: DecisionAction.OPEN_SHORT,
    SignalAction.CLOSE: DecisionAction.CLOSE,
}


class FollowAnalyst(Analyst):
    name = "follow"
    local = True
    reads_market = False

    def decide(self, signal: Signal, context: MarketContext) -> Decision:
        return Decision(
            ACTIONS[signal.action],
            1.0 if signal.confidence is None else signal.confidence,
            f"following the {signal.source} signal: {signal.action.value}",
            self.name,
            stop_loss=signal.stop_loss,
            take_profit=signal.take_profit,
        )

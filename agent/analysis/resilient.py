"""Around any AI analyst: a circuit breaker per provider, a daily budget, and a fallback.

- A provider that fails ``failures_to_open`` calls in a row (down, 429/5xx after retries, timeout) opens
  its breaker for ``cooldown_s``: meanwhile the fallback decides, and the status says ``degraded``.
- An answer that is not a valid decision is recorded (by the analyst's audit) and the fallback decides;
  it does not open the breaker (the provider is up, the answer was bad).
- Past AI_DAILY_BUDGET_USD of AI spend today, the fallback decides.
The fallback is the rules analyst, or ``hold`` (AI_FALLBACK).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from agent.analysis.base import Analyst, MarketContext
from shared.errors import InvalidInput, Temporary
from shared.logs import log_event, redact_secrets
from shared.models import Decision, DecisionAction, Signal

logger = logging.getLogger(__name__)


class HoldAnalyst(Analyst):
    name = "hold"

    def decide(self, signal: Signal, context: MarketContext) -> Decision:
        return Decision(DecisionAction.HOLD, 0.0, "fallback: hold", self.name)


class ResilientAnalyst(Analyst):
    def __init__(
        self,
        primary: Analyst,
        fallback: Analyst,
        spent_today: Callable[[], float],
        daily_budget_usd: float,
        failures_to_open: int = 3,
        cooldown_s: float = 60.0,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = primary.name
        self.wants_track_record = primary.wants_track_record
        self._spent_today = spent_today
        self._budget = daily_budget_usd
        self._failures_to_open = failures_to_open
        self._cooldown_s = cooldown_s
        self._failures = 0
        self._open_until = 0.0
        self.last_problem = ""

    @property
    def daily_budget_usd(self) -> float:
        """AI_DAILY_BUDGET_USD (0 = no limit): position reviews keep inside it too."""
        return self._budget

    def spent_today(self) -> float:
        return self._spent_today()

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._open_until

    def decide(self, signal: Signal, context: MarketContext) -> Decision:
        if self.degraded:
            return self._fallback(signal, context, f"{self.primary.name} degraded: {self.last_problem}")
        if self._budget > 0 and self._spent_today() >= self._budget:
            return self._fallback(signal, context, f"daily AI budget of {self._budget:g} USD reached")
        try:
            decision = self.primary.decide(signal, context)
        except Temporary as exc:
            self._failures += 1
            self.last_problem = redact_secrets(str(exc))
            if self._failures >= self._failures_to_open:
                self._open_until = time.monotonic() + self._cooldown_s
                log_event(
                    logger, "ai_breaker_open", logging.ERROR, provider=self.primary.name, error=str(exc)
                )
            return self._fallback(signal, context, f"{self.primary.name} failed: {self.last_problem}")
        except InvalidInput as exc:
            return self._fallback(signal, context, f"{self.primary.name} gave an invalid decision: {exc}")
        self._failures = 0
        return decision

    def _fallback(self, signal: Signal, context: MarketContext, why: str) -> Decision:
        decision = self.fallback.decide(signal, context)
        log_event(logger, "ai_fallback", logging.WARNING, provider=self.primary.name, reason=why)
        return replace(decision, rationale=f"[{why}; {self.fallback.name} decided] {decision.rationale}")

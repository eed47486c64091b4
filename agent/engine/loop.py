"""The engine's loop: one thread, one pass after another, and what each kind of failure makes it do.

A pass steps the market on its interval, folds in what the exchange reported, keeps the orders, the dead
man's switch, funding and the drift check up on their intervals, decides pending signals and publishes
the status. A failed pass is answered by its error (``shared.errors``):

- ``Temporary``: logged, and the next pass retries after a backoff that doubles with each failure in a row;
- ``Rejected`` / ``InvalidInput``: recorded (logged, the last error kept) and the loop moves on;
- ``UnknownOutcome``: an order may or may not exist: our books are reconciled with the exchange at once;
- ``Fatal``: trading is HALTED (the guard's state, cause ``fatal``), a human is alerted, and the loop goes
  on serving status and reconciliation without sending new exposure;
- ``MAX_FAILURES_IN_A_ROW`` failed passes of any kind in a row pause the engine, the reason naming the last
  error (paused, it retries reconciliation until the exchange can be read).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agent.engine.liquidation_alert import LiquidationWatch
from agent.execution.funding import book_funding
from shared.errors import BluefinAIError, Fatal, InvalidInput, Rejected, Temporary, UnknownOutcome
from shared.logs import log_event

if TYPE_CHECKING:
    from agent.engine.engine import Engine

logger = logging.getLogger(__name__)
STATUS_EVERY_S = 2.0
RECONCILE_EVERY_S = 5.0
FUNDING_EVERY_S = 300.0  # funding settles hourly: the exchange's funding history is read this often
DRIFT_EVERY_S = 60.0  # our positions compared with the exchange's this often while trading
MAX_FAILURES_IN_A_ROW = 5  # failed passes in a row that pause the engine
BACKOFF_FIRST_S = 1.0  # the wait after a Temporary failure, doubled with each one in a row
BACKOFF_MAX_S = 30.0


@dataclass
class Failures:
    """The loop's failed passes in a row and the last error (shown in the status when it pauses)."""

    in_a_row: int = 0
    last_error: str = ""

    def backoff_s(self) -> float:
        """The wait before retrying after ``in_a_row`` failures (0 after a good pass)."""
        if not self.in_a_row:
            return 0.0
        return float(min(BACKOFF_FIRST_S * 2.0 ** (self.in_a_row - 1), BACKOFF_MAX_S))


class EngineLoop:
    """Runs the engine's passes until it is stopped; answers each failure as the module docstring says."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.failures = Failures()
        self.liquidations = LiquidationWatch(engine.policy.liquidation_alert_atr)

    def run(self) -> None:
        engine = self.engine
        engine.last_pass_at = time.monotonic()
        try:
            engine.prepare()
        except BluefinAIError as exc:
            engine.pause(f"start-up failed: {exc}")
        except Exception as exc:  # a bug in start-up: stay alive, paused, and retry like any other failure
            logger.exception("engine_prepare_crashed")
            engine.pause(f"start-up failed: {type(exc).__name__}: {exc}")
        next_candle = time.monotonic() + engine.candle_interval_s
        next_status = 0.0
        next_reconcile = time.monotonic() + RECONCILE_EVERY_S
        next_funding = 0.0
        next_drift = time.monotonic() + DRIFT_EVERY_S
        while not engine.stopping:
            now = time.monotonic()
            retry_at = 0.0
            try:
                if now >= next_candle:
                    engine.step_market()
                    self.liquidations.check(engine)  # LIQUIDATION_ALERT_ATR
                    next_candle = max(next_candle + engine.candle_interval_s, now)
                if engine.status.state == "paused" and now >= next_reconcile:
                    engine.reconcile()  # retried until the exchange can be read
                    next_reconcile = now + RECONCILE_EVERY_S
                if engine.status.state == "running":
                    engine.fold_exchange_changes()
                    if now >= next_reconcile:
                        engine.maintain_orders()
                        engine.refresh_dead_man_switch()
                        if now >= next_funding:
                            book_funding(engine.store, engine.exchange, engine.journal, datetime.now(UTC))
                            next_funding = now + FUNDING_EVERY_S
                        if now >= next_drift:
                            engine.check_positions()
                            next_drift = now + DRIFT_EVERY_S
                        next_reconcile = now + RECONCILE_EVERY_S
                    engine.process_pending_signals()
                if now >= next_status:
                    engine.publish_status()
                    next_status = now + STATUS_EVERY_S
                self.failures.in_a_row = 0
            except Exception as exc:  # every failure is answered by its kind (``failed``), none ends the loop
                retry_at = time.monotonic() + self._answer(exc)
            engine.last_pass_at = time.monotonic()
            wake_at = max(min(next_candle, next_status), retry_at)
            if engine.signals_waiting and not retry_at:
                # a whole batch was decided, so more are pending: the next pass goes at once (waiting for
                # the status timer drained a backlog at one batch per 2 s, 50 signals/s)
                wake_at = 0.0
            engine.wait(max(0.0, wake_at - time.monotonic()))

    def _answer(self, exc: Exception) -> float:
        """``failed``, which must not end the loop either (halting writes the state: the database may be
        down too)."""
        try:
            return self.failed(exc)
        except Exception:
            logger.exception("engine_failure_not_answered")
            return 1.0

    def failed(self, exc: Exception) -> float:
        """Answer one failed pass (see the module docstring); the seconds to wait before the next one."""
        engine, failures = self.engine, self.failures
        failures.in_a_row += 1
        failures.last_error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, Temporary):
            log_event(logger, "engine_step_failed", logging.WARNING, error=str(exc), kind="temporary",
                      in_a_row=failures.in_a_row, retry_in_s=failures.backoff_s())  # fmt: skip
        elif isinstance(exc, Rejected | InvalidInput):
            log_event(logger, "engine_step_rejected", logging.WARNING, error=str(exc),
                      in_a_row=failures.in_a_row)  # fmt: skip
        elif isinstance(exc, UnknownOutcome):
            log_event(logger, "engine_step_unknown_outcome", logging.ERROR, error=str(exc))
            self._reconcile()
        elif isinstance(exc, Fatal):
            engine.halt(f"fatal error: {exc}")
        elif isinstance(exc, BluefinAIError):
            log_event(logger, "engine_step_failed", logging.ERROR, error=str(exc), kind=type(exc).__name__)
        else:
            logger.exception("engine_step_crashed")
        if failures.in_a_row >= MAX_FAILURES_IN_A_ROW:
            engine.pause(f"{failures.in_a_row} failures in a row, the last: {failures.last_error}")
            failures.in_a_row = 0
        if isinstance(exc, Temporary):
            return failures.backoff_s()
        return 0.0 if isinstance(exc, BluefinAIError) else 1.0  # a bug: not again at once

    def _reconcile(self) -> None:
        """After an unknown outcome: our books against the exchange's, now (a failure here pauses)."""
        try:
            self.engine.reconcile()
        except BluefinAIError as exc:
            self.engine.pause(f"reconciliation after an unknown outcome failed: {exc}")

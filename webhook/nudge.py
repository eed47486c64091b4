"""Telling the agent that signals are waiting: fire-and-forget, so an alert's answer never waits on it."""

from __future__ import annotations

import logging
import threading
import time

from shared.errors import Temporary
from shared.json_post import JsonPoster
from shared.logs import log_event

NUDGE_TIMEOUT_S = 1.0
# at most one nudge per NUDGE_SPACING_S: the first after a quiet spell goes at once, those that follow within
# the spacing fold into one at its end. A nudge only wakes the engine, which then takes every pending signal,
# and each one costs both services a request (at 200 alerts/s one each was a fifth of the agent's CPU); a
# signal waits at most this much longer for an engine that was idle in between
NUDGE_SPACING_S = 0.02
logger = logging.getLogger(__name__)


class AgentNudger:
    """One background thread and one kept-alive connection: nudges that arrive while one is being sent, or
    within NUDGE_SPACING_S of it, fold into the next (carrying the newest signal id)."""

    def __init__(self, agent_url: str, token: str, spacing_s: float = NUDGE_SPACING_S) -> None:
        self._poster = JsonPoster(
            agent_url.rstrip("/") + "/internal/nudge", {"Authorization": f"Bearer {token}"}, NUDGE_TIMEOUT_S
        )
        self._spacing_s = spacing_s
        self._wanted = threading.Condition()
        self._latest: int | None = None
        self._thread = threading.Thread(target=self._run, name="nudge", daemon=True)
        self._thread.start()

    def nudge(self, signal_id: int) -> None:
        with self._wanted:
            self._latest = signal_id
            self._wanted.notify()

    def _run(self) -> None:
        sent_at = -float("inf")
        while True:
            with self._wanted:
                while self._latest is None:
                    self._wanted.wait()
            rest = sent_at + self._spacing_s - time.monotonic()
            if rest > 0:
                time.sleep(rest)  # more nudges fold in meanwhile
            with self._wanted:
                signal_id, self._latest = self._latest, None
            sent_at = time.monotonic()
            self._send(signal_id)

    def _send(self, signal_id: int) -> None:
        try:
            self._poster.post({"signal_id": signal_id})
        except Temporary as exc:
            log_event(logger, "agent_nudge_failed", logging.WARNING, signal_id=signal_id, error=str(exc))

"""CPU priority of one thread: the agent's engine loop may yield the CPU to the webhook (ENGINE_NICE).

On Linux a thread's nice value is its own (``setpriority`` on its native id), so the agent's API threads
keep theirs; elsewhere the call may lower the whole process, which is what ENGINE_NICE then means.
"""

from __future__ import annotations

import logging
import os

from shared.logs import log_event

MAX_NICE = 19
logger = logging.getLogger(__name__)


def lower_thread_priority(native_id: int, nice: int) -> int:
    """Raise the nice value of thread ``native_id`` by ``nice`` (at most 19); the value it has now."""
    current = os.getpriority(os.PRIO_PROCESS, native_id)
    if nice <= 0:
        return current
    wanted = min(MAX_NICE, current + nice)
    try:
        os.setpriority(os.PRIO_PROCESS, native_id, wanted)
    except OSError as exc:  # a sandbox may forbid it: the engine then runs at its usual priority
        log_event(logger, "priority_not_lowered", logging.WARNING, thread=native_id, error=str(exc))
        return current
    log_event(logger, "priority_lowered", thread=native_id, nice=wanted)
    return wanted

"""The services' warnings and errors on the dashboard: ``EventLogHandler`` publishes every log record at
WARNING or above as a ``log`` event (the JSON line ``shared.logs`` writes, secrets scrubbed, at most
``max_line_bytes``) through the agent's event poster, fire-and-forget.

The poster's own records (``shared.events``: the websocket service unreachable, its queue full; anything
logged on its thread) are never published, and a record logged while one is being published is skipped,
so an outage cannot feed itself.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from shared.logs import JsonFormatter

LOG_EVENT = "log"
FEED_LINE_BYTES = 2048
QUIET_LOGGERS = ("shared.events", "shared.json_post")
POSTER_THREAD = "event-publisher"  # shared.events.EventPublisher's thread: nothing it logs is published


class EventLogHandler(logging.Handler):
    def __init__(
        self,
        publish: Callable[[str, dict[str, Any]], None],
        service: str,
        level: int = logging.WARNING,
        max_line_bytes: int = FEED_LINE_BYTES,
    ) -> None:
        super().__init__(level)
        self._publish = publish
        self._format = JsonFormatter(service, max_line_bytes)
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        quiet = record.name.startswith(QUIET_LOGGERS) or record.threadName == POSTER_THREAD
        if quiet or getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            self._publish(LOG_EVENT, json.loads(self._format.format(record)))
        except (ValueError, TypeError):
            self.handleError(record)
        finally:
            self._local.busy = False

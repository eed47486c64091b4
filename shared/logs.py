"""Structured logging: one JSON object per line, secrets scrubbed.

``configure_logging(service, level, secrets)`` once per process; then ``log_event(logger, "event", k=v)``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from logging.handlers import WatchedFileHandler
from pathlib import Path
from typing import Any

_SECRETS: list[str] = []
REDACTED = "***"
DEFAULT_MAX_LINE_BYTES = 8192


def scrub(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, REDACTED)
    return text


# Key-shaped words a provider may echo back (Anthropic, OpenAI-style, Perplexity keys; bearer credentials)
KEY_SHAPES = re.compile(r"\b(?:sk-ant-[\w-]{6,}|sk-[\w-]{16,}|pplx-[\w-]{6,})|(?<=Bearer )[\w.~+/=-]{8,}")


def redact_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each given secret, the process's configured secrets and any key-shaped word replaced
    by ``***``: for a provider's error text before it is stored or shown (a 401 may echo the key)."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return KEY_SHAPES.sub(REDACTED, scrub(text))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...(+{len(text) - limit} chars)"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, at most ``max_line_bytes`` long: a long value (a stranger's body, a deep
    traceback) is cut, never the line's structure."""

    def __init__(self, service: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        super().__init__()
        self.service = service
        self.max_line_bytes = max_line_bytes

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        line = scrub(json.dumps(payload, default=str))
        if len(line) <= self.max_line_bytes:
            return line
        # too long: every text value cut to a share of the line (the end of a traceback is what matters)
        share = max(64, self.max_line_bytes // (2 * max(1, len(payload))))
        for key, value in list(payload.items()):
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            if len(text) > share:
                payload[key] = _cut(text, share) if key != "exception" else "..." + text[-share:]
        payload["truncated"] = True
        line = scrub(json.dumps(payload, default=str))
        if len(line) > self.max_line_bytes:  # many fields: keep the envelope only
            line = json.dumps({k: payload[k] for k in ("ts", "level", "service", "logger", "event")} |
                              {"truncated": True}, default=str)[: self.max_line_bytes]  # fmt: skip
        return line


def configure_logging(
    service: str,
    level: str = "INFO",
    secrets: Iterable[str] = (),
    log_dir: Path | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> None:
    """Send every log record of the process to stderr as JSON lines, with the given secrets scrubbed;
    also to ``log_dir/<service>.log`` when a log folder is configured."""
    _SECRETS[:] = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(WatchedFileHandler(log_dir / f"{service}.log"))
    for handler in handlers:
        handler.setFormatter(JsonFormatter(service, max_line_bytes))
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    for noisy in ("werkzeug", "engineio.server", "socketio.server", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, event, extra={"fields": fields})

"""Bluefin Pro's WebSocket streams (``/ws/market``, ``/ws/account``), kept open in a background thread.

A ``Stream`` connects, sends its subscription, and hands every message (``{"event", "payload", ...}``) to
its owner. On any drop (closed socket, error, silence longer than ``silence_s``) it reconnects with
exponential backoff and jitter and subscribes again; ``on_open`` is told after every (re)connect so the owner
can backfill over REST whatever it may have missed while the stream was down. Subscription answers
(``{"success", "message"}``) are logged, not handed on.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from shared.logs import log_event

logger = logging.getLogger(__name__)
Message = dict[str, Any]


class Stream:
    def __init__(
        self,
        name: str,
        url: str,
        subscriptions: Callable[[], list[Message]],
        on_message: Callable[[Message], None],
        on_open: Callable[[], None] | None = None,
        headers: Callable[[], dict[str, str]] | None = None,
        silence_s: float | None = 60.0,  # reconnect after this long without a message (None: never)
        backoff_max_s: float = 30.0,
    ) -> None:
        self.name = name
        self.url = url
        self._subscriptions = subscriptions
        self._on_message = on_message
        self._on_open = on_open
        self._headers = headers
        self.silence_s = silence_s
        self.backoff_max_s = backoff_max_s
        self.connected = False
        self.connects = 0  # successful connections (the first and every reconnect)
        self.last_message_at = 0.0  # monotonic
        self._socket: ClientConnection | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bluefin-{name}-stream", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self.drop()
        self._thread.join(timeout_s)

    def drop(self) -> None:
        """Close the current connection (it reconnects unless stopped)."""
        socket = self._socket
        if socket is not None:
            socket.close()

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                headers = self._headers() if self._headers is not None else {}
                with connect(
                    self.url, additional_headers=headers, open_timeout=10, close_timeout=2
                ) as socket:
                    self._socket = socket
                    for message in self._subscriptions():
                        socket.send(json.dumps(message))
                    self.connects += 1
                    self.last_message_at = time.monotonic()
                    log_event(logger, "bluefin_stream_connected", stream=self.name, connects=self.connects)
                    delay = 0.5
                    if self._on_open is not None:
                        self._on_open()  # first: nobody trusts the stream before its owner knows
                    self.connected = True
                    self._read(socket)
            except (WebSocketException, OSError, TimeoutError) as exc:
                if not self._stop.is_set():
                    log_event(
                        logger,
                        "bluefin_stream_error",
                        logging.WARNING,
                        stream=self.name,
                        error=f"{type(exc).__name__}: {exc}"[:200],
                        retry_in_s=round(delay, 2),
                    )
            except Exception:  # the owner's handler failed: log it, reconnect, never let the thread die
                logger.exception("bluefin_stream_handler_failed", extra={"fields": {"stream": self.name}})
            finally:
                was_connected, self.connected, self._socket = self.connected, False, None
                if was_connected:
                    log_event(logger, "bluefin_stream_disconnected", logging.WARNING, stream=self.name)
            if self._stop.wait(delay * (1 + random.random() / 4)):
                return
            delay = min(delay * 2, self.backoff_max_s)

    def _read(self, socket: ClientConnection) -> None:
        while not self._stop.is_set():
            try:
                raw = socket.recv(timeout=self.silence_s)
            except TimeoutError:  # silence_s passed without a message
                log_event(
                    logger, "bluefin_stream_silent", logging.WARNING, stream=self.name, after_s=self.silence_s
                )
                return
            self.last_message_at = time.monotonic()
            try:
                message = json.loads(raw)
            except ValueError:
                log_event(logger, "bluefin_stream_unreadable", logging.WARNING, stream=self.name)
                continue
            if not isinstance(message, dict):
                continue
            if "event" not in message and "success" in message:
                log_event(
                    logger,
                    "bluefin_stream_subscription",
                    stream=self.name,
                    success=message.get("success"),
                    message=str(message.get("message"))[:200],
                )
                continue
            self._on_message(message)

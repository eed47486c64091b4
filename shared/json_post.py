"""A kept-alive JSON POST to one URL, for the services' internal fire-and-forget messages (the webhook's
nudges, the agent's events).

Over ``http.client`` rather than requests: a post costs a third of the CPU (0.6 against 1.7 ms, client and a
local server together), and at 200 alerts/s those posts were a fifth of the webhook's CPU. One connection,
reopened after any failure; callers post from one thread at a time."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from shared.errors import Temporary

# what a kept-alive connection the server closed while it was idle raises on its next use
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class JsonPoster:
    def __init__(self, url: str, headers: dict[str, str], timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {**headers, "Content-Type": "application/json"}
        self._timeout = timeout_s
        self._connection: http.client.HTTPConnection | None = None
        self._where = f"{self._host}:{self._port}{self._path}"

    def post(self, body: Any) -> int:
        """POST ``body`` as JSON and return the status; a 4xx/5xx or no answer raises Temporary.

        A kept-alive connection the server closed while idle fails on first use without an answer: only that
        (no status line, a broken pipe, a reset) is sent once more, on a fresh connection; a timeout is not,
        so a slow server never receives a message twice."""
        payload = json.dumps(body, separators=(",", ":"), default=str).encode()
        reused = self._connection is not None
        try:
            status = self._send(payload)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            if not (reused and isinstance(exc, STALE)):
                raise Temporary(f"POST {self._where}: {exc}") from exc
            try:
                status = self._send(payload)
            except (OSError, http.client.HTTPException) as again:
                self.close()
                raise Temporary(f"POST {self._where}: {again}") from again
        if status >= 400:
            raise Temporary(f"POST {self._where}: HTTP {status}")
        return status

    def _send(self, payload: bytes) -> int:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=self._timeout)
        self._connection.request("POST", self._path, payload, self._headers)
        response = self._connection.getresponse()
        response.read()
        if response.will_close:
            self.close()
        return response.status

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

"""A JSON HTTP server on 127.0.0.1 that answers POSTs from a queue of behaviours (the base of the fake
AI APIs): ("json", status, body), ("raw", status, text) or ("hang", seconds) then the default answer."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QueuedJSONServer:
    def __init__(self, default: dict[str, Any]) -> None:
        self.default = default
        self.queue: deque[tuple[Any, ...]] = deque()
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                credential = self.headers.get("x-api-key") or self.headers.get(
                    "Authorization", ""
                ).removeprefix("Bearer ")
                fake.requests.append({"path": self.path, "body": body, "api_key": credential})
                behaviour = fake.queue.popleft() if fake.queue else ("json", 200, fake.default)
                if behaviour[0] == "hang":
                    time.sleep(behaviour[1])
                    behaviour = ("json", 200, fake.default)
                kind, status, payload = behaviour
                data = json.dumps(payload).encode() if kind == "json" else str(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if status == 429:
                    self.send_header("retry-after", "0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except BrokenPipeError:  # the client gave up (a timeout test)
                    return

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> str:
        return self.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""A fake Anthropic Messages API on 127.0.0.1 (real HTTP) that answers from a queue of behaviours."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GOOD = {"action": "open_long", "confidence": 0.8, "entry_type": "market", "stop_loss": 40_000.0,
        "take_profits": [60_000.0], "leverage": 2, "time_horizon": "intraday",
        "rationale": "trend and momentum agree", "factors": {"trend": 0.7, "momentum": 0.4}}  # fmt: skip


def message(content: list[dict[str, Any]], stop_reason: str = "tool_use") -> dict[str, Any]:
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": 1200, "output_tokens": 150}}  # fmt: skip


def tool(decision: dict[str, Any]) -> dict[str, Any]:
    return message([{"type": "tool_use", "id": "toolu_1", "name": "trade_decision", "input": decision}])


class FakeAnthropic:
    """Behaviours: ("json", status, body), ("raw", status, text), ("hang", seconds). Default: a good decision."""

    def __init__(self) -> None:
        self.queue: deque[tuple[Any, ...]] = deque()
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(
                    {
                        "path": self.path,
                        "body": body,
                        "api_key": self.headers.get("x-api-key")
                        or self.headers.get("Authorization", "").removeprefix("Bearer "),
                    }
                )
                behaviour = fake.queue.popleft() if fake.queue else ("json", 200, tool(GOOD))
                if behaviour[0] == "hang":
                    time.sleep(behaviour[1])
                    behaviour = ("json", 200, tool(GOOD))
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
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> str:
        self.thread.start()
        return self.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""A fake chat-completions API (Perplexity / OpenAI-compatible) on 127.0.0.1, answering from a queue."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.anthropic_api import GOOD


def completion(content: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {"id": "cmpl-1", "object": "chat.completion", "model": "sonar-pro",
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 120}}  # fmt: skip


class FakeChat:
    """Behaviours: ("json", status, body), ("raw", status, text), ("hang", seconds). Default: a good decision."""

    def __init__(self) -> None:
        self.queue: deque[tuple[Any, ...]] = deque()
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                behaviour = (
                    fake.queue.popleft() if fake.queue else ("json", 200, completion(json.dumps(GOOD)))
                )
                if behaviour[0] == "hang":
                    time.sleep(behaviour[1])
                    behaviour = ("json", 200, completion(json.dumps(GOOD)))
                kind, status, payload = behaviour
                data = json.dumps(payload).encode() if kind == "json" else str(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except BrokenPipeError:
                    return

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

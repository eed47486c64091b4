"""A fake chat-completions API (Perplexity / OpenAI-compatible) on 127.0.0.1, answering from a queue."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.anthropic_api import GOOD
from tests.fakes.queued_http import QueuedJSONServer


def completion(content: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {"id": "cmpl-1", "object": "chat.completion", "model": "sonar-pro",
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 120}}  # fmt: skip


class FakeChat(QueuedJSONServer):
    """Chat completions; the default answer is a good decision as JSON content."""

    def __init__(self) -> None:
        super().__init__(completion(json.dumps(GOOD)))

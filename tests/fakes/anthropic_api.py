"""A fake Anthropic Messages API on 127.0.0.1 (real HTTP) that answers from a queue of behaviours."""

from __future__ import annotations

from typing import Any

from tests.fakes.queued_http import QueuedJSONServer

GOOD = {"action": "open_long", "confidence": 0.8, "entry_type": "market", "stop_loss": 40_000.0,
        "take_profits": [60_000.0], "leverage": 2, "time_horizon": "intraday",
        "rationale": "trend and momentum agree", "factors": {"trend": 0.7, "momentum": 0.4}}  # fmt: skip


def message(content: list[dict[str, Any]], stop_reason: str = "tool_use") -> dict[str, Any]:
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": 1200, "output_tokens": 150}}  # fmt: skip


def tool(decision: dict[str, Any]) -> dict[str, Any]:
    return message([{"type": "tool_use", "id": "toolu_1", "name": "trade_decision", "input": decision}])


def review_tool(answer: dict[str, Any]) -> dict[str, Any]:
    """A position review answered through the position_review tool."""
    return message([{"type": "tool_use", "id": "toolu_2", "name": "position_review", "input": answer}])


class FakeAnthropic(QueuedJSONServer):
    """The Messages API; the default answer is a good trade_decision tool call."""

    def __init__(self) -> None:
        super().__init__(tool(GOOD))

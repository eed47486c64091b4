"""The journal: events are written in the same transaction as the change they describe, and published
to the dashboard only after that transaction commits.

The events of one transaction are inserted together, just before it commits (``agent.journal.store``)."""

from __future__ import annotations

from typing import Any

from agent.journal.store import Records
from shared.events import EventPublisher


class Journal:
    def __init__(self, publisher: EventPublisher | None) -> None:
        self._publisher = publisher

    def pending(self) -> JournalBatch:
        return JournalBatch(self._publisher)

    @property
    def active(self) -> bool:
        """Is anyone listening (a dashboard publisher)? Backtests run without one."""
        return self._publisher is not None

    def publish(self, name: str, data: dict[str, Any]) -> None:
        """Publish without journalling (market ticks, status heartbeats)."""
        if self._publisher is not None:
            self._publisher.publish(name, data)


class JournalBatch:
    """Collects the events of one transaction; ``flush()`` after commit publishes them."""

    def __init__(self, publisher: EventPublisher | None) -> None:
        self._publisher = publisher
        self._events: list[tuple[str, dict[str, Any]]] = []

    def record(self, records: Records, name: str, data: dict[str, Any]) -> None:
        """Journal an event in the transaction of ``records`` (written with it, in recorded order)."""
        records.event(name, data)
        self._events.append((name, data))

    def flush(self) -> None:
        if self._publisher is not None:
            for name, data in self._events:
                self._publisher.publish(name, data)
        self._events.clear()

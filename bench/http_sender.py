"""The benchmark's senders: HTTP/1.1 POSTs over kept-alive connections from one asyncio loop.

A thread and a ``requests`` session per sender cost the benchmark about as much CPU per alert as the webhook
service itself, on the same cores as the stack it measures; raw requests from one event loop cost a tenth of
that, so the figures are the stack's. Open loop at a rate: each POST leaves at its scheduled time on an idle
connection (a new one when all are busy, up to ``max_connections``), and its latency counts from that time,
so an answer that kept the next alert waiting is not hidden (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TIMEOUT_S = 10.0
# a refused or dropped connection, a timeout, an answer cut short or one that is not HTTP
NO_ANSWER = (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer (a connection error or a timeout)
    latency_s: float


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def post(self, request: bytes) -> tuple[int, bool]:
        """Send one whole request; (the answer's status, whether the server keeps the connection)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = (line.partition(":") for line in lines[1:] if line)
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        else:
            await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers.get("connection", "").lower() != "close"

    def close(self) -> None:
        self.writer.close()


def post_request(host: str, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("ascii") + body


class Senders:
    """Kept-alive connections to ``host:port`` shared by every POST of one run."""

    def __init__(self, host: str, port: int, max_connections: int) -> None:
        self.host, self.port = host, port
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def send(self, request: bytes, since: float | None = None) -> Answer:
        """POST ``request``; the latency counts from ``since`` (perf_counter seconds), else from the moment
        a connection is free."""
        async with self._slots:
            since = time.perf_counter() if since is None else since
            connection: Connection | None = None
            try:
                connection = self._idle.pop() if self._idle else await Connection.open(self.host, self.port)
                status, keep = await asyncio.wait_for(connection.post(request), TIMEOUT_S)
            except NO_ANSWER:
                if connection is not None:
                    connection.close()
                return Answer(0, time.perf_counter() - since)
            answer = Answer(status, time.perf_counter() - since)
            if keep:
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def send_all(
    host: str,
    port: int,
    plan: Sequence[tuple[float, bytes]],
    max_connections: int,
    open_loop: bool,
    on_start: Callable[[], None] = lambda: None,
) -> tuple[list[Answer], float]:
    """Send every (when, request) of ``plan``: open loop, each at ``when`` seconds from the start (latency
    from then); else flat out, ``max_connections`` at a time in plan order (latency from the send). The
    answers in plan order and the seconds it took."""

    async def run() -> tuple[list[Answer], float]:
        senders = Senders(host, port, max_connections)
        on_start()
        started = time.perf_counter()
        try:
            if open_loop:

                async def timed(at: float, request: bytes) -> Answer:
                    delay = started + at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    return await senders.send(request, started + at)

                answers = await asyncio.gather(*(timed(at, request) for at, request in plan))
            else:
                answers = await asyncio.gather(*(senders.send(request) for _, request in plan))
            return list(answers), time.perf_counter() - started
        finally:
            senders.close()

    return asyncio.run(run())

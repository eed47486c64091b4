"""Benchmark: dashboard events fanned out over socket.io to many browsers' worth of clients.

``--clients`` socket.io clients (websocket transport, one asyncio process) connect to the websocket service
(a real gunicorn, gevent worker); the agent's side is played by a sender that POSTs ``--rate`` events/s to
``/internal/events`` for ``--duration`` seconds, each stamped with its send time. Every client records each
event's delivery latency (received - sent). Run twice: one worker without Redis, then ``--workers`` workers
behind the local Redis (REDIS_URL, Flask-SocketIO's message queue), the posts spread over the workers. Prints
p50/p99/max latency, events delivered of expected (each client must get each event once) and the ratio of the
Redis run's p99 to the single worker's, with the machine's load.

    python bench/dashboard.py [--clients 200] [--rate 10] [--duration 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import load
from tests.conftest import TOKEN
from tests.socket_fanout import EVENT, SocketService, redis_reachable, socket_services

REDIS = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Figures:
    label: str
    latencies_ms: list[float]
    expected: int
    doubled: int

    def line(self) -> str:
        ordered = sorted(self.latencies_ms) or [float("nan")]
        p99 = self.p99
        return (
            f"{self.label:<20} delivered {len(self.latencies_ms):>6} of {self.expected:>6}"
            f"  doubled {self.doubled}"
            f"  p50 {statistics.median(ordered):7.2f} ms  p99 {p99:7.2f} ms  max {ordered[-1]:7.2f} ms"
            f"  ({load()})"
        )

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


@dataclass
class Audience:
    clients: list[socketio.AsyncClient]
    arrivals: list[dict[int, float]]  # per client: event seq -> latency ms
    doubles: list[int]  # seqs a client received twice


async def _connect(url: str, count: int) -> Audience:
    clients: list[socketio.AsyncClient] = []
    seen: list[dict[int, float]] = []
    doubles: list[int] = []
    for _ in range(count):
        client = socketio.AsyncClient(reconnection=False)
        arrivals: dict[int, float] = {}

        def on_event(data: dict[str, float], arrivals: dict[int, float] = arrivals) -> None:
            seq = int(data["seq"])
            if seq in arrivals:
                doubles.append(seq)
            arrivals[seq] = (time.time() - data["sent_at"]) * 1000

        client.on(EVENT, on_event)
        await client.connect(url, auth={"token": TOKEN}, transports=["websocket"], wait_timeout=20)
        clients.append(client)
        seen.append(arrivals)
    return Audience(clients, seen, doubles)


def _send(service: SocketService, rate: float, duration: float) -> int:
    sent = 0
    start = time.monotonic()
    while (due := start + sent / rate) < start + duration:
        time.sleep(max(0.0, due - time.monotonic()))
        with requests.Session() as fresh:  # a new connection each: with several workers, the posts spread
            service.post({"seq": sent, "sent_at": time.time()}, fresh)
        sent += 1
    return sent


async def _measure(service: SocketService, label: str, clients: int, rate: float, duration: float) -> Figures:
    audience = await _connect(service.base, clients)
    sent = await asyncio.to_thread(_send, service, rate, duration)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum(len(s) for s in audience.arrivals) < sent * clients:
        await asyncio.sleep(0.1)
    for client in audience.clients:
        await client.disconnect()
    latencies = [ms for arrivals in audience.arrivals for ms in arrivals.values()]
    return Figures(label, latencies, sent * clients, len(audience.doubles))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="events per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    parser.add_argument("--workers", type=int, default=2, help="workers of the Redis run")
    args = parser.parse_args()
    if not redis_reachable(REDIS):
        print(f"no Redis at {REDIS}: the second run needs it", file=sys.stderr)
        return 2
    print(f"{args.clients} clients, {args.rate:g} events/s for {args.duration:g} s; {load()}")
    results: list[Figures] = []
    with tempfile.TemporaryDirectory() as folder:
        runs = ((1, ""), (args.workers, REDIS))
        for index, (workers, redis_url) in enumerate(runs):
            tmp = Path(folder) / str(index)
            tmp.mkdir()
            channel = f"bluefinai-bench-{uuid.uuid4().hex[:8]}"
            with socket_services(tmp, workers=workers, redis_url=redis_url, channel=channel) as (service,):
                label = f"{workers} worker{'s' if workers > 1 else ''}" + (" + Redis" if redis_url else "")
                figures = asyncio.run(_measure(service, label, args.clients, args.rate, args.duration))
            print(figures.line(), flush=True)
            results.append(figures)
    one, many = results
    print(f"p99 of {many.label} / {one.label}: {many.p99 / one.p99:.2f}x")
    complete = all(len(r.latencies_ms) == r.expected and r.doubled == 0 for r in results)
    print(f"check (every client got every event once): {'PASS' if complete else 'FAIL'}")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())

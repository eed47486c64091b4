"""Websocket services as real gunicorn processes and socket.io clients that record what they receive.

Used by the fan-out integration test and by ``bench/dashboard.py``: the same launch both ways."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import requests
import socketio

from bluefinai.processes import stop_process
from bluefinai.services import service_specs, start_service, wait_healthy
from shared.db import Database
from shared.events import EVENTS_PATH
from tests.conftest import TOKEN, free_port

EVENT = "status"  # one of shared.events.EVENT_NAMES: the dashboard's own event, carrying the test's data


def redis_reachable(url: str = "redis://127.0.0.1:6379/0") -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@dataclass
class SocketService:
    port: int
    process: Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(self, data: dict[str, Any], session: requests.Session | None = None) -> None:
        sender = session or requests
        answer = sender.post(
            self.base + EVENTS_PATH,
            json={"event": EVENT, "data": data},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        answer.raise_for_status()


@contextmanager
def socket_services(
    tmp_path: Path, count: int = 1, workers: int = 1, redis_url: str = "", channel: str = "bluefinai"
) -> Iterator[list[SocketService]]:
    """``count`` websocket services (each ``workers`` gunicorn workers) on one database, sharing ``redis_url``."""
    database_url = f"sqlite:///{tmp_path / 'fanout.db'}"
    Database(database_url).migrate()
    running: list[SocketService] = []
    try:
        for index in range(count):
            port = free_port()
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": os.environ.get("HOME", "/tmp"),
                "BLUEFINAI_ENV_FILE": "",
                "BLUEFINAI_SERVICE": "websocket",
                "API_TOKEN": TOKEN,
                "DATA_DIR": str(tmp_path),
                "DATABASE_URL": database_url,
                "SOCKET_PORT": str(port),
                "REDIS_URL": redis_url,
                "REDIS_CHANNEL": channel,
                "SOCKET_WORKERS": str(workers),
                "LOG_LEVEL": "WARNING",
            }
            spec = next(
                s for s in service_specs(free_port(), free_port(), port, workers) if s.name == "websocket"
            )
            process = start_service(spec, env, tmp_path / f"websocket-{index}.log")
            running.append(SocketService(port, process))
            if not wait_healthy(spec.health_url, 60, process):
                log = (tmp_path / f"websocket-{index}.log").read_text()[-3000:]
                raise AssertionError(f"websocket service {index} did not start:\n{log}")
        yield running
    finally:
        for service in running:
            stop_process(service.process)


@dataclass
class Listener:
    """One socket.io client (websocket transport) that keeps each ``EVENT`` it receives and when."""

    url: str
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = socketio.Client(reconnection=False)
        self.client.on(EVENT, self._on_event)

    def _on_event(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.received.append((time.time(), data))

    def connect(self) -> None:
        self.client.connect(self.url, auth={"token": TOKEN}, transports=["websocket"], wait_timeout=10)

    def close(self) -> None:
        self.client.disconnect()

    def sequence(self, key: str = "seq") -> list[Any]:
        with self.lock:
            return [data.get(key) for _, data in self.received]


@contextmanager
def listeners(urls: list[str]) -> Iterator[list[Listener]]:
    connected: list[Listener] = []
    try:
        for url in urls:
            listener = Listener(url)
            listener.connect()
            connected.append(listener)
        yield connected
    finally:
        for listener in connected:
            listener.close()

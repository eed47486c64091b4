"""The websocket service behind Redis (REDIS_URL): every client gets every event, whichever worker or process
the agent's POST reached. Real gunicorn processes, real socket.io clients, the Redis on this machine."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_for
from tests.socket_fanout import listeners, redis_reachable, socket_services

REDIS = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.skipif(not redis_reachable(REDIS), reason="no Redis on 127.0.0.1:6379")


def _channel() -> str:
    return f"bluefinai-test-{uuid.uuid4().hex[:12]}"  # runs sharing this Redis do not hear each other


def test_two_processes_share_events_through_redis(tmp_path: Path) -> None:
    services = socket_services(tmp_path, count=2, redis_url=REDIS, channel=_channel())
    with services as (a, b), listeners([a.base] * 3 + [b.base] * 3) as clients:
        for seq in range(5):
            a.post({"seq": f"a{seq}"})
            b.post({"seq": f"b{seq}"})
        expected = {f"a{n}" for n in range(5)} | {f"b{n}" for n in range(5)}
        wait_for(lambda: all(set(c.sequence()) == expected for c in clients), 15)
        for client in clients:
            seen = client.sequence()
            assert len(seen) == 10  # each event once, none doubled by the queue
            assert [s for s in seen if s.startswith("a")] == [f"a{n}" for n in range(5)]  # in order


def test_without_redis_a_process_only_reaches_its_own_clients(tmp_path: Path) -> None:
    """The control: the other process's clients hear nothing, so the test above proves the queue works."""
    with socket_services(tmp_path, count=2) as (a, b), listeners([a.base, b.base]) as (on_a, on_b):
        for seq in range(3):
            a.post({"seq": seq})
        wait_for(lambda: on_a.sequence() == [0, 1, 2], 10)
        requests.get(b.base + "/health", timeout=5)  # b is alive and was idle
        assert on_b.sequence() == []


def test_two_workers_on_one_port_deliver_every_event_to_every_client(tmp_path: Path) -> None:
    with socket_services(tmp_path, workers=2, redis_url=REDIS, channel=_channel()) as (service,):
        page = requests.get(service.base + "/", timeout=5).text
        assert 'data-transports="websocket"' in page  # no long-polling across workers
        with listeners([service.base] * 12) as clients:
            for seq in range(10):
                with requests.Session() as fresh:  # a new connection each: the workers share the posts
                    service.post({"seq": seq}, fresh)
            wait_for(lambda: all(c.sequence() == list(range(10)) for c in clients), 15)

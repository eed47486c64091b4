from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.errors import Temporary
from shared.json_post import JsonPoster
from tests.conftest import free_port


class KeepAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 with kept-alive connections; records each body and each new connection."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    bodies: list[Any] = []
    connections = 0
    status = 200
    delay_s = 0.0
    close_after_answer = False

    def setup(self) -> None:
        super().setup()
        KeepAlive.connections += 1

    def do_POST(self) -> None:
        KeepAlive.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        time.sleep(KeepAlive.delay_s)
        self.send_response(KeepAlive.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        if KeepAlive.close_after_answer:  # the server drops the idle connection without telling
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    KeepAlive.bodies, KeepAlive.connections, KeepAlive.status = [], 0, 200
    KeepAlive.delay_s, KeepAlive.close_after_answer = 0.0, False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()


def poster_for(httpd: ThreadingHTTPServer, timeout_s: float = 2.0) -> JsonPoster:
    return JsonPoster(f"http://127.0.0.1:{httpd.server_port}/in", {"Authorization": "Bearer t"}, timeout_s)


def test_posts_share_one_kept_alive_connection(server: ThreadingHTTPServer) -> None:
    poster = poster_for(server)
    for n in range(20):
        assert poster.post({"n": n}) == 200
    assert KeepAlive.bodies == [{"n": n} for n in range(20)]
    assert KeepAlive.connections == 1


def test_a_connection_the_server_dropped_is_reopened_and_the_message_delivered_once(
    server: ThreadingHTTPServer,
) -> None:
    KeepAlive.close_after_answer = True
    poster = poster_for(server)
    for n in range(3):
        poster.post({"n": n})
        time.sleep(0.05)  # the server has closed its end by now
    assert KeepAlive.bodies == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert KeepAlive.connections == 3


def test_an_error_status_or_no_server_is_temporary(server: ThreadingHTTPServer) -> None:
    KeepAlive.status = 503
    with pytest.raises(Temporary, match="HTTP 503"):
        poster_for(server).post({"n": 1})
    with pytest.raises(Temporary, match=r"POST 127\.0\.0\.1"):
        JsonPoster(f"http://127.0.0.1:{free_port()}/in", {}, 1.0).post({"n": 1})


def test_a_slow_server_is_not_sent_the_message_twice(server: ThreadingHTTPServer) -> None:
    poster = poster_for(server, timeout_s=0.2)
    poster.post({"n": 0})  # the connection is now a reused one
    KeepAlive.delay_s = 0.5
    with pytest.raises(Temporary):
        poster.post({"n": 1})
    time.sleep(0.6)
    assert KeepAlive.bodies == [{"n": 0}, {"n": 1}]


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="not an http"):
        JsonPoster("ftp://example/x", {}, 1.0)

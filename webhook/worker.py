"""The webhook's gunicorn worker: uvicorn on uvloop with the httptools parser, the client's address as
the connection's own.

``proxy_headers`` is off: uvicorn would otherwise take the client's address from ``X-Forwarded-For`` sent
through a trusted proxy, and ``webhook.gate`` decides itself which headers of which proxy it believes.
No access log (a line per alert formatted for nothing) and no lifespan: the app is built by its factory.
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker


class WebhookWorker(UvicornWorker):  # type: ignore[misc]  # uvicorn-worker ships no type hints
    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "proxy_headers": False,
        "access_log": False,
        "lifespan": "off",
        "server_header": False,
    }

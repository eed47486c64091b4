"""The fuzzed bodies of tests/unit/webhook/test_fuzz.py, now through nginx to the real gunicorn webhook:
never a 5xx, and each answer is JSON."""

from __future__ import annotations

import json
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stack import RunningStack
from tests.unit.webhook.test_fuzz import alerts, body_with_raw, raw_pieces

THROUGH_NGINX = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@THROUGH_NGINX
@given(alert=alerts, field=st.sampled_from(["price", "symbol", "extra", "timeframe"]), piece=raw_pieces)
def test_no_fuzzed_body_gets_a_5xx_through_nginx(stack: RunningStack, alert: dict[str, Any], field: str,
                                                  piece: str) -> None:  # fmt: skip
    for body in (json.dumps(alert).encode(), body_with_raw(field, piece, alert["passphrase"])):
        response = requests.post(f"{stack.base}/webhook", data=body, headers={"Content-Type": "text/plain"},
                                 timeout=10)  # fmt: skip
        assert response.status_code < 500, (response.status_code, response.text[:300])
        assert response.headers["Content-Type"].startswith("application/json"), response.text[:300]

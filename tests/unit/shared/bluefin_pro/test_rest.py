"""ProClient against the fake Bluefin Pro: reads retried with backoff, Retry-After honoured, writes sent
once with errors that say whether the request may have reached Bluefin, tokens refreshed and never logged."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator

import pytest

from shared.bluefin_pro.network import pro_hosts
from shared.bluefin_pro.rest import AnswerLost, ProClient, Refused, RequestNotSent
from shared.bluefin_pro.signing import SuiKey
from shared.logs import JsonFormatter
from tests.fakes.bluefin_pro import FakeBluefinPro


@pytest.fixture
def fake() -> Iterator[FakeBluefinPro]:
    server = FakeBluefinPro(symbols=("BTC-PERP",))
    server.timeout_hang_s = 2.0
    server.start()
    yield server
    server.stop()


def client_of(fake: FakeBluefinPro, **kwargs: object) -> ProClient:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(min(seconds, 0.3))

    client = ProClient(pro_hosts(fake.url), SuiKey.from_seed(secrets.token_bytes(32)), timeout_s=1.0,
                       sleep=sleep, **kwargs)  # type: ignore[arg-type]  # fmt: skip
    client.sleeps = sleeps  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize("kind", ["500", "503", "drop", "malformed", "timeout"])
def test_reads_are_retried_until_they_answer(fake: FakeBluefinPro, kind: str) -> None:
    client = client_of(fake)
    fake.misbehave(kind, "/v1/exchange/ticker", times=2)
    ticker = client.get("/v1/exchange/ticker", {"symbol": "BTC-PERP"})
    assert ticker["symbol"] == "BTC-PERP"
    assert len(client.sleeps) == 2  # type: ignore[attr-defined]  # two backoffs, growing
    assert client.sleeps[1] > client.sleeps[0]  # type: ignore[attr-defined]


def test_a_read_that_keeps_failing_says_so(fake: FakeBluefinPro) -> None:
    client = client_of(fake, read_attempts=3)
    fake.misbehave("500", "/v1/exchange/ticker", times=5)
    with pytest.raises(AnswerLost, match="500"):
        client.get("/v1/exchange/ticker", {"symbol": "BTC-PERP"})


def test_a_long_retry_after_makes_every_request_fail_fast_until_it_has_passed(
    fake: FakeBluefinPro, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared.bluefin_pro.rest.LONGEST_WAIT_S", 0.5)  # 1.5 s is "long" here
    client = client_of(fake)
    fake.misbehave("429", "/v1/exchange/ticker", retry_after_s=1.5)
    started = time.monotonic()
    with pytest.raises(RequestNotSent, match="429"):
        client.get("/v1/exchange/ticker", {"symbol": "BTC-PERP"})
    with pytest.raises(RequestNotSent, match="nothing is sent"):
        client.send("POST", "/api/v1/trade/orders", {"anything": 1})
    assert time.monotonic() - started < 1.0 and fake.order_requests == []
    time.sleep(1.6)
    assert client.get("/v1/exchange/ticker", {"symbol": "BTC-PERP"})["symbol"] == "BTC-PERP"


def test_writes_are_sent_once_and_their_errors_say_what_happened(fake: FakeBluefinPro) -> None:
    client = client_of(fake)
    with pytest.raises(Refused) as refused:
        client.send(
            "POST", "/api/v1/trade/orders", {"signedFields": {}, "type": "MARKET", "reduceOnly": False}
        )
    assert refused.value.status in (400, 401) and "Bluefin refused" in str(refused.value)
    fake.misbehave("drop", "/api/v1/trade/orders")
    with pytest.raises(AnswerLost):
        client.send("POST", "/api/v1/trade/orders", {"x": 1})
    assert len(fake.order_requests) <= 2 and client.sleeps == []  # type: ignore[attr-defined]  # never retried
    closed = ProClient(pro_hosts("http://127.0.0.1:9"), client.key, timeout_s=0.5)
    with pytest.raises(RequestNotSent, match="cannot reach"):
        closed.send("POST", "/api/v1/trade/orders", {"x": 1})


def test_a_refused_refresh_logs_in_again_and_tokens_never_reach_the_logs(
    fake: FakeBluefinPro, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.access_ttl_s = 2.0
    client = client_of(fake)
    first = client.access_token()
    assert client.logins == 1 and fake.logins == 1
    assert client._tokens is not None
    client._tokens.refresh = "not-a-refresh-token"
    client._tokens.access_until = 0.0
    second = client.access_token()
    assert second != first and client.logins == 2 and client.refreshes == 0
    lines = [JsonFormatter("test").format(record) for record in caplog.records]
    assert lines and not [line for line in lines if first in line or second in line]
    assert any("bluefin_login" in line for line in lines)


def test_a_short_retry_after_is_waited_out(fake: FakeBluefinPro) -> None:
    client = ProClient(pro_hosts(fake.url), timeout_s=1.0)
    fake.misbehave("429", "/v1/exchange/ticker", retry_after_s=0.6)
    started = time.monotonic()
    assert client.get("/v1/exchange/ticker", {"symbol": "BTC-PERP"})["symbol"] == "BTC-PERP"
    assert time.monotonic() - started >= 0.6

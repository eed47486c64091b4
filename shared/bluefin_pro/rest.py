"""Bluefin Pro's REST API over httpx: tokens, reads that retry, writes that never do.

- Login: ``POST /auth/v2/token`` with the body signed as a personal message; the access token is refreshed
  (``PUT /auth/token/refresh``) before it expires, a refused refresh logs in again, and a request answered
  401 logs in once more and is sent again. Tokens are never logged or put in errors.
- Reads (``get``) are retried with backoff and jitter on timeouts, dropped connections, 5xx and 429; a 429's
  ``Retry-After`` is honoured: a short one is waited out, a long one makes every request until then fail
  fast with ``Temporary`` (nothing is sent meanwhile).
- Writes (``send``) are sent once. The caller decides what an error means for its request (an order that
  timed out may exist; see ``shared.exchange.bluefin_pro``): ``send`` raises ``RequestNotSent`` when the
  request surely did not reach Bluefin (no connection, rate-limit window), ``AnswerLost`` when it may have
  (timeout, dropped connection, 5xx, an unreadable answer), and ``Refused`` with Bluefin's status and
  message otherwise. Re-sending the identical signed bytes after a 401 is safe: Bluefin refuses a second
  order with the same hash.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from shared.bluefin_pro.network import ProHosts
from shared.bluefin_pro.signing import SuiKey, login_body, sign_personal_message
from shared.errors import Fatal, Rejected, Temporary
from shared.logs import log_event

logger = logging.getLogger(__name__)
READ_ATTEMPTS = 4
LONGEST_WAIT_S = 5.0  # a Retry-After up to this is waited out; a longer one fails fast until it has passed
REFRESH_BEFORE_S = 60.0  # refresh the access token this long before it expires (or at 3/4 of its life)


class Refused(Rejected):
    """Bluefin answered and refused (4xx other than 401 and 429)."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        self.status, self.code = status, code
        super().__init__(f"Bluefin refused ({status}{' ' + code if code else ''}): {message}")


class RequestNotSent(Temporary):
    """The request surely did not reach Bluefin (no connection, or inside a rate-limit window)."""


class AnswerLost(Temporary):
    """The request may have reached Bluefin, but its answer is not known (timeout, 5xx, dropped line)."""


@dataclass
class _Tokens:
    access: str
    access_until: float  # monotonic
    refresh: str
    refresh_until: float


def _error_message(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if isinstance(body, dict):
        return str(body.get("errorCode", "") or ""), str(body.get("message", body))[:300]
    return "", str(body)[:200]


def _renew_after(valid_s: float) -> float:
    """When to renew a token valid for ``valid_s``: REFRESH_BEFORE_S ahead, at 3/4 of its life at the latest,
    and not before half of it (short-lived tokens)."""
    return max(valid_s * 0.5, min(valid_s - REFRESH_BEFORE_S, valid_s * 0.75))


def retry_after_s(response: httpx.Response, default: float = 1.0) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


class ProClient:
    """One client per process; thread-safe (httpx.Client is, and the tokens are behind a lock)."""

    def __init__(
        self,
        hosts: ProHosts,
        key: SuiKey | None = None,
        timeout_s: float = 10.0,
        read_attempts: int = READ_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.hosts = hosts
        self.key = key
        self.read_attempts = read_attempts
        self._sleep = sleep
        self._http = httpx.Client(timeout=timeout_s, headers={"User-Agent": "bluefinai-trader"})
        self._tokens: _Tokens | None = None
        self._token_lock = threading.Lock()
        self._blocked_until = 0.0  # monotonic: a 429's Retry-After
        self.logins = 0
        self.refreshes = 0

    def close(self) -> None:
        self._http.close()

    @property
    def address(self) -> str:
        if self.key is None:
            raise Fatal("this Bluefin client has no key (public data only)")
        return self.key.address

    # --- tokens --------------------------------------------------------------------------------------------
    def access_token(self) -> str:
        """A valid access token: logging in or refreshing as needed."""
        with self._token_lock:
            now = time.monotonic()
            tokens = self._tokens
            if tokens is None or now >= tokens.refresh_until:
                tokens = self._login()
            elif now >= tokens.access_until:
                tokens = self._refresh(tokens)
            return tokens.access

    def _forget_token(self, used: str) -> None:
        with self._token_lock:
            if self._tokens is not None and self._tokens.access == used:
                self._tokens = None

    def _keep(self, answer: dict[str, Any]) -> _Tokens:
        now = time.monotonic()
        self._tokens = _Tokens(
            str(answer["accessToken"]),
            now + _renew_after(float(answer["accessTokenValidForSeconds"])),
            str(answer["refreshToken"]),
            now + _renew_after(float(answer["refreshTokenValidForSeconds"])),
        )
        return self._tokens

    def _login(self) -> _Tokens:
        key = self.key
        if key is None:
            raise Fatal("this Bluefin client has no key: it cannot log in")
        body = login_body(key.address, int(time.time() * 1000))
        headers = {"payloadSignature": sign_personal_message(key, body), "Content-Type": "application/json"}
        response = self._exchange("POST", f"{self.hosts.auth}/auth/v2/token", content=body, headers=headers)
        if response.status_code in (400, 401, 403, 404):
            code, message = _error_message(response)
            raise Fatal(
                f"Bluefin refused the login of {key.address} ({response.status_code} {code}): {message}"
            )
        answer = self._answer(response, "login")
        self.logins += 1
        tokens = self._keep(answer)
        log_event(logger, "bluefin_login", account=key.address,
                  access_valid_s=answer.get("accessTokenValidForSeconds"))  # fmt: skip
        return tokens

    def _refresh(self, tokens: _Tokens) -> _Tokens:
        response = self._exchange(
            "PUT", f"{self.hosts.auth}/auth/token/refresh", json={"refreshToken": tokens.refresh}
        )
        if response.status_code in (400, 401, 403):
            log_event(logger, "bluefin_refresh_refused", logging.WARNING, status=response.status_code)
            return self._login()
        answer = self._answer(response, "token refresh")
        self.refreshes += 1
        return self._keep(answer)

    # --- transport -----------------------------------------------------------------------------------------
    def _exchange(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange; transport failures become RequestNotSent / AnswerLost; 429 and 5xx raise."""
        wait = self._blocked_until - time.monotonic()
        if wait > 0:
            raise RequestNotSent(f"Bluefin rate limit: nothing is sent for another {wait:.1f} s")
        try:
            response = self._http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise RequestNotSent(f"cannot reach Bluefin: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:  # read/write timeouts, dropped connections, protocol errors
            raise AnswerLost(f"no answer from Bluefin: {type(exc).__name__}") from exc
        if response.status_code == 429:
            pause = retry_after_s(response)
            self._blocked_until = max(self._blocked_until, time.monotonic() + pause)
            raise RequestNotSent(f"Bluefin rate limit (429): retry after {pause:g} s")
        if response.status_code >= 500:
            code, message = _error_message(response)
            raise AnswerLost(f"Bluefin error {response.status_code} {code}: {message}")
        return response

    @staticmethod
    def _answer(response: httpx.Response, what: str) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError) as exc:
            raise AnswerLost(f"Bluefin {what}: the answer is not JSON") from exc

    def _authorised(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """With the access token; a 401 logs in again once and the same bytes go again."""
        given = kwargs.pop("headers", {})
        for attempt in range(2):
            try:
                token = self.access_token()
            except (AnswerLost, RequestNotSent) as exc:  # the request itself has not gone out
                raise RequestNotSent(f"not sent: no access token ({exc})") from exc
            headers = {**given, "Authorization": f"Bearer {token}"}
            response = self._exchange(method, url, headers=headers, **kwargs)
            if response.status_code != 401 or attempt == 1:
                return response
            log_event(logger, "bluefin_token_refused", logging.WARNING, path=url.rsplit("/", 2)[-1])
            self._forget_token(token)
        raise AssertionError("unreachable")

    def _url(self, path: str) -> str:
        host = self.hosts.trade if path.startswith("/api/v1/trade") else self.hosts.data
        return f"{host}{path}"

    # --- reads ---------------------------------------------------------------------------------------------
    def get(self, path: str, params: dict[str, Any] | None = None, auth: bool = False) -> Any:
        """A read, retried with backoff (honouring Retry-After) up to ``read_attempts`` times."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        last: Temporary | None = None
        for attempt in range(self.read_attempts):
            try:
                if auth:
                    response = self._authorised("GET", self._url(path), params=query)
                else:
                    response = self._exchange("GET", self._url(path), params=query)
                if response.status_code == 401:
                    raise Fatal(f"Bluefin refused our token twice on {path}")
                if response.status_code >= 400:
                    code, message = _error_message(response)
                    raise Refused(response.status_code, message, code)
                return self._answer(response, path)
            except Temporary as exc:
                last = exc
                wait = self._blocked_until - time.monotonic()
                if wait > LONGEST_WAIT_S or attempt == self.read_attempts - 1:
                    break
                self._sleep(max(wait, 0.1 * 2**attempt * (1 + random.random() / 4)))
        assert last is not None
        raise last

    # --- writes --------------------------------------------------------------------------------------------
    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """A write, sent once (see the module docstring for what each error means)."""
        content = json.dumps(body).encode()
        response = self._authorised(
            method, self._url(path), content=content, headers={"Content-Type": "application/json"}
        )
        if response.status_code == 401:
            raise Fatal(f"Bluefin refused our token twice on {path}")
        if response.status_code >= 400:
            code, message = _error_message(response)
            raise Refused(response.status_code, message, code)
        return self._answer(response, path)

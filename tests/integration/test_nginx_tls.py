"""nginx's front door over real TLS: TradingView's client certificate against a test CA of our own making,
the HTTP -> HTTPS redirect, security headers, JSON errors, rate limit, allowed addresses, and the one
template rendered by Python and by the Docker entrypoint."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from bluefinai.nginx import NGINX_TEMPLATE, check_nginx_conf, find_nginx, render_nginx_conf, start_nginx
from bluefinai.processes import stop_process
from bluefinai.services import wait_healthy
from shared.config import PROJECT_ROOT
from tests.conftest import PASSPHRASE, TOKEN, free_port
from tests.stack import RunningStack, Tls, launch_stack
from tests.tls_certs import Pair, Pki, make_test_pki

pytestmark = pytest.mark.integration

ENTRYPOINT = PROJECT_ROOT / "nginx" / "entrypoint.sh"
ACME_TOKEN = "test-token-Zx9"
CERT_REQUIRED = {
    "error": "forbidden",
    "detail": "only TradingView's client certificate may post here (HTTPS)",
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def acme_root() -> Iterator[Path]:
    """World-readable (nginx's workers run as nobody when the tests run as root; pytest's tmp is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="bluefinai-acme-"))
    challenge = root / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True)
    (challenge / ACME_TOKEN).write_text(f"{ACME_TOKEN}.key-authorisation")
    for path in (root, root / ".well-known", challenge):
        path.chmod(0o755)
    (challenge / ACME_TOKEN).chmod(0o644)
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory: pytest.TempPathFactory, pki: Pki, acme_root: Path) -> Iterator[RunningStack]:
    """The real services behind nginx with HTTPS, TradingView's certificate required (nginx and webhook)."""
    tls = Tls(pki.server.cert, pki.server.key, pki.ca)
    overrides = {"ACME_ROOT": str(acme_root)}
    with launch_stack(
        tmp_path_factory.mktemp("stack"), tls, require_tv_cert=True, nginx_overrides=overrides
    ) as s:
        yield s


def alert_body(alert_id: str, passphrase: str = PASSPHRASE) -> str:
    return json.dumps({"passphrase": passphrase, "id": alert_id, "symbol": "BTCUSDT.P", "action": "buy"})


def post_alert(
    base: str, pki: Pki, cert: Pair | None, body: str, session: requests.Session | None = None
) -> requests.Response:
    return (session or requests).post(
        f"{base}/webhook",
        data=body,
        headers={"Content-Type": "text/plain"},
        cert=cert.requests_cert if cert else None,
        verify=str(pki.ca),
        timeout=5,
    )


def signal_ids(stack: RunningStack, pki: Pki) -> list[int]:
    response = requests.get(
        f"{stack.https_base}/api/signals",
        headers={"Authorization": f"Bearer {TOKEN}"},
        verify=str(pki.ca),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["signals"]]


@contextmanager
def another_nginx(stack: RunningStack, tmp_path: Path, **overrides: str) -> Iterator[tuple[str, str]]:
    """A second nginx (its own ports, rate-limit zone and run folder) in front of the same services,
    rendered from the stack's inputs with ``overrides``; yields its HTTP and HTTPS base URLs."""
    http_port, https_port = free_port(), free_port()
    run_dir = tmp_path / f"nginx-{http_port}"
    inputs = stack.nginx_inputs | {
        "HTTP_PORT": f"127.0.0.1:{http_port}",
        "HTTPS_PORT": f"127.0.0.1:{https_port}",
        "PUBLIC_HTTPS_PORT": str(https_port),
        "RUN_DIR": str(run_dir),
    }
    process = start_nginx(render_nginx_conf(inputs | overrides), run_dir)
    try:
        assert wait_healthy(f"http://127.0.0.1:{http_port}/health", 10, process), (
            run_dir / "nginx.log"
        ).read_text()
        yield f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}"
    finally:
        stop_process(process)


# --- TradingView's client certificate ---


def test_tradingviews_certificate_reaches_the_real_webhook(tls_stack: RunningStack, pki: Pki) -> None:
    response = post_alert(tls_stack.https_base, pki, pki.tradingview, alert_body("tls-1"))
    assert response.status_code == 202, response.text
    signal_id = response.json()["signal_id"]
    # the same subject with only CN and O (nginx prints it CN=...,O=TradingView\, Inc.) is TradingView's too
    minimal = post_alert(tls_stack.https_base, pki, pki.tradingview_minimal, alert_body("tls-2"))
    assert minimal.status_code == 202, minimal.text
    assert {signal_id, minimal.json()["signal_id"]} <= set(signal_ids(tls_stack, pki))


@pytest.mark.parametrize(
    "which",
    [None, "self_signed_tradingview", "wrong_organisation", "wrong_common_name", "smuggled"],
)
def test_anything_but_tradingviews_certificate_is_refused_by_nginx(
    tls_stack: RunningStack, pki: Pki, which: str | None
) -> None:
    before = signal_ids(tls_stack, pki)
    cert = getattr(pki, which) if which else None
    response = post_alert(tls_stack.https_base, pki, cert, alert_body(f"refused-{which}"))
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == CERT_REQUIRED  # nginx's answer, not the webhook's (which has "reason")
    assert signal_ids(tls_stack, pki) == before


def test_a_certificate_that_fails_verification_otherwise_gets_a_json_400(
    tls_stack: RunningStack, pki: Pki
) -> None:
    response = post_alert(tls_stack.https_base, pki, pki.expired_tradingview, alert_body("expired"))
    assert response.status_code == 400
    assert response.json() == {"error": "client certificate refused"}


def test_plain_http_never_takes_an_alert_when_the_certificate_is_required(
    tls_stack: RunningStack, pki: Pki
) -> None:
    response = requests.post(
        f"{tls_stack.base}/webhook", data=alert_body("over-http"), allow_redirects=False, timeout=5
    )
    assert response.status_code == 301
    assert response.headers["Location"] == f"{tls_stack.https_base}/webhook"


def test_the_webhook_is_told_what_nginx_verified_never_what_the_client_claims(
    tls_stack: RunningStack, pki: Pki, tmp_path: Path
) -> None:
    # nginx not requiring the certificate, in front of the webhook that does: forged headers must not pass
    forged = {
        "Content-Type": "text/plain",
        "X-Client-Verify": "SUCCESS",
        "X-Client-Subject": "CN=TradingView Webhooks,O=TradingView\\, Inc.",
        "X-Real-IP": "52.89.214.238",
    }
    with another_nginx(tls_stack, tmp_path, WEBHOOK_REQUIRE_TV_CERT="false") as (_, https):
        response = requests.post(
            f"{https}/webhook", data=alert_body("forged"), headers=forged, verify=str(pki.ca), timeout=5
        )
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "reason": "TradingView's client certificate is required"}


# --- routes, redirects, headers, errors ---


def test_http_redirects_to_https_except_the_acme_challenge_and_health(tls_stack: RunningStack) -> None:
    response = requests.get(f"{tls_stack.base}/api/status?x=1", allow_redirects=False, timeout=5)
    assert response.status_code == 301
    assert response.headers["Location"] == f"{tls_stack.https_base}/api/status?x=1"
    assert "Strict-Transport-Security" not in response.headers
    health = requests.get(f"{tls_stack.base}/health", allow_redirects=False, timeout=5)
    assert health.status_code == 200 and "Strict-Transport-Security" not in health.headers
    challenge = requests.get(
        f"{tls_stack.base}/.well-known/acme-challenge/{ACME_TOKEN}", allow_redirects=False, timeout=5
    )
    assert challenge.status_code == 200 and challenge.text == f"{ACME_TOKEN}.key-authorisation"


def test_dashboard_over_https_carries_the_security_headers(tls_stack: RunningStack, pki: Pki) -> None:
    response = requests.get(f"{tls_stack.https_base}/", verify=str(pki.ca), timeout=5)
    assert response.status_code == 200 and "<html" in response.text.lower()
    headers = response.headers
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Server"] == "nginx"  # server_tokens off: no version
    script = requests.get(f"{tls_stack.https_base}/static/dashboard.js", verify=str(pki.ca), timeout=5)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]


def test_internal_routes_and_metrics_are_not_reachable_through_nginx(
    tls_stack: RunningStack, pki: Pki
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    direct = requests.post(
        f"http://127.0.0.1:{tls_stack.specs['agent'].port}/internal/nudge", headers=auth, timeout=5
    )
    assert direct.status_code != 404  # the route exists on the agent itself
    for method, path in (("POST", "/internal/nudge"), ("GET", "/internal/anything"), ("GET", "/metrics")):
        response = requests.request(
            method, f"{tls_stack.https_base}{path}", headers=auth, verify=str(pki.ca), timeout=5
        )
        assert response.status_code == 404, path
        assert response.json() == {"error": "not found"}


def test_a_body_over_64_kib_is_a_json_413(tls_stack: RunningStack, pki: Pki) -> None:
    response = post_alert(tls_stack.https_base, pki, pki.tradingview, "x" * 70_000)
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == "request body too large"


def test_plain_http_on_the_https_port_is_a_json_400(tls_stack: RunningStack) -> None:
    response = requests.get(f"http://127.0.0.1:{tls_stack.https_port}/", timeout=5)
    assert response.status_code == 400 and response.json()["error"] == "plain HTTP sent to the HTTPS port"


def test_a_service_that_does_not_answer_is_a_json_502(
    tls_stack: RunningStack, pki: Pki, tmp_path: Path
) -> None:
    with another_nginx(tls_stack, tmp_path, WEBHOOK_ADDR=f"127.0.0.1:{free_port()}") as (_, https):
        response = post_alert(https, pki, pki.tradingview, alert_body("no-service"))
    assert response.status_code == 502 and response.json()["error"] == "service unavailable"


def test_flooding_the_webhook_gets_json_429s(tls_stack: RunningStack, pki: Pki, tmp_path: Path) -> None:
    statuses: list[int] = []
    with another_nginx(tls_stack, tmp_path) as (_, https), requests.Session() as session:
        for index in range(90):
            response = post_alert(
                https, pki, pki.tradingview, alert_body(f"flood-{index}", "wrong-pass"), session
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["Content-Type"] == "application/json"
                assert response.json()["error"] == "too many requests"
    assert statuses[:20] == [401] * 20  # the burst reaches the webhook (wrong passphrase)
    assert statuses.count(429) >= 20, statuses


def test_allowed_addresses(tls_stack: RunningStack, pki: Pki, tmp_path: Path) -> None:
    with another_nginx(tls_stack, tmp_path, WEBHOOK_ALLOWED_IPS="10.0.0.0/8,127.0.0.1/32") as (_, https):
        allowed = post_alert(https, pki, pki.tradingview, alert_body("allowed-ip"))
    assert allowed.status_code == 202, allowed.text
    with another_nginx(tls_stack, tmp_path, WEBHOOK_ALLOWED_IPS="52.89.214.238/32,10.0.0.0/8") as (_, https):
        refused = post_alert(https, pki, pki.tradingview, alert_body("refused-ip"))
        dashboard = requests.get(f"{https}/", verify=str(pki.ca), timeout=5)
    assert refused.status_code == 403 and refused.json() == {"error": "forbidden"}
    assert dashboard.status_code == 200  # the list is for /webhook only


# --- the one template: every combination accepted by nginx -t; the Docker entrypoint renders the same ---


def base_inputs(pki: Pki, run_dir: Path, https: bool, tv_cert: bool, ips: bool) -> dict[str, str]:
    return {
        "HTTP_PORT": "127.0.0.1:18080",
        "HTTPS_PORT": "127.0.0.1:18443" if https else "",
        "PUBLIC_HTTPS_PORT": "18443",
        "TLS_CERT": str(pki.server.cert),
        "TLS_KEY": str(pki.server.key),
        "TV_CLIENT_CA": str(pki.ca),
        "WEBHOOK_REQUIRE_TV_CERT": "true" if tv_cert else "false",
        "WEBHOOK_ALLOWED_IPS": "52.89.214.238/32,34.212.75.30/32,2001:db8::/32" if ips else "",
        "AGENT_ADDR": "127.0.0.1:15003",
        "WEBHOOK_ADDR": "127.0.0.1:15004",
        "SOCKET_ADDR": "127.0.0.1:15008",
        "ACME_ROOT": str(run_dir / "acme"),
        "RUN_DIR": str(run_dir),
        "WEBHOOK_RATE": "20r/s",
        "WEBHOOK_BURST": "40",
    }


COMBINATIONS = list(itertools.product([False, True], repeat=3))


@pytest.mark.parametrize(("https", "tv_cert", "ips"), COMBINATIONS)
def test_every_rendering_passes_nginx_t(
    pki: Pki, tmp_path: Path, https: bool, tv_cert: bool, ips: bool
) -> None:
    if find_nginx() is None:
        pytest.skip("nginx is not installed")
    conf = render_nginx_conf(base_inputs(pki, tmp_path, https, tv_cert, ips))
    assert check_nginx_conf(conf, tmp_path) == ""
    assert ("ssl_certificate " in conf) == https and ("ssl_verify_client" in conf) == (https and tv_cert)
    assert ("allow 52.89.214.238/32; allow 34.212.75.30/32; allow 2001:db8::/32; deny all;" in conf) == ips
    directives = "\n".join(line for line in conf.splitlines() if not line.lstrip().startswith("#"))
    assert "#[" not in directives and "${" not in directives
    assert "$ssl_client_s_dn" in directives  # nginx's own $variables stay


def test_a_value_that_would_change_the_syntax_is_refused(pki: Pki, tmp_path: Path) -> None:
    inputs = base_inputs(pki, tmp_path, True, True, True)
    with pytest.raises(ValueError, match="TLS_CERT"):
        render_nginx_conf(inputs | {"TLS_CERT": "/tmp/x.pem; include /etc/passwd"})
    with pytest.raises(ValueError, match="WEBHOOK_ALLOWED_IPS"):
        render_nginx_conf(inputs | {"WEBHOOK_ALLOWED_IPS": "1.2.3.4;allow all"})


def run_entrypoint(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if shutil.which("envsubst") is None:
        if os.environ.get("CI"):
            pytest.fail("envsubst is not installed (make system-deps installs gettext-base)")
        pytest.skip("envsubst is not installed")
    return subprocess.run(
        ["sh", str(ENTRYPOINT), "render"],
        env={"PATH": os.environ["PATH"], "NGINX_TEMPLATE": str(NGINX_TEMPLATE), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(("https", "tv_cert", "ips"), COMBINATIONS)
def test_the_docker_entrypoint_renders_what_python_renders(
    pki: Pki, tmp_path: Path, https: bool, tv_cert: bool, ips: bool
) -> None:
    inputs = base_inputs(pki, tmp_path / "run", https, tv_cert, ips)
    result = run_entrypoint(inputs)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "run" / "nginx.conf")
    assert (tmp_path / "run" / "nginx.conf").read_text() == render_nginx_conf(inputs)


def test_the_entrypoint_starts_with_a_temporary_certificate_until_lets_encrypt_has_one(
    pki: Pki, tmp_path: Path
) -> None:
    if find_nginx() is None or shutil.which("openssl") is None:
        pytest.skip("needs nginx and openssl")
    run_dir = tmp_path / "run"
    inputs = base_inputs(pki, run_dir, True, True, False) | {
        "TLS_CERT": str(tmp_path / "letsencrypt" / "fullchain.pem"),
        "TLS_KEY": str(tmp_path / "letsencrypt" / "privkey.pem"),
    }
    result = run_entrypoint(inputs)
    assert result.returncode == 0, result.stderr
    assert "temporary self-signed certificate" in result.stderr
    conf = (run_dir / "nginx.conf").read_text()
    assert f"ssl_certificate {run_dir}/temporary-certificate/cert.pem;" in conf
    test = subprocess.run(
        [
            find_nginx() or "nginx",
            "-t",
            "-q",
            "-e",
            "stderr",
            "-p",
            str(run_dir),
            "-c",
            str(run_dir / "nginx.conf"),
        ],
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stderr
    # once the real files are there, the next rendering uses them
    (tmp_path / "letsencrypt").mkdir()
    shutil.copy(pki.server.cert, tmp_path / "letsencrypt" / "fullchain.pem")
    shutil.copy(pki.server.key, tmp_path / "letsencrypt" / "privkey.pem")
    assert run_entrypoint(inputs).returncode == 0
    assert f"ssl_certificate {tmp_path}/letsencrypt/fullchain.pem;" in (run_dir / "nginx.conf").read_text()


def test_the_server_certificate_nginx_presents_is_the_one_given(tls_stack: RunningStack, pki: Pki) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca))
    assert tls_stack.https_port is not None
    with (
        socket.create_connection(("127.0.0.1", tls_stack.https_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert dict(x[0] for x in tls.getpeercert()["subject"])["commonName"] == "localhost"

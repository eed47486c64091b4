"""The dashboard's Services panel in headless Chromium: each service's health, CPU and memory, live."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

import tests.stack
from bluefinai.services import ServiceSpec
from tests.conftest import TOKEN
from tests.integration.test_notifications import metered_webhook, notifying_agent
from tests.stack import RunningStack

pytestmark = pytest.mark.e2e
__all__ = ["metered_webhook", "monitored_dashboard", "notifying_agent"]
APPS = {
    "agent": "tests.integration.test_notifications:notifying_agent()",
    "webhook": "tests.integration.test_notifications:metered_webhook()",
    "websocket": "tests.e2e.test_service_health:monitored_dashboard()",
}


def monitored_dashboard() -> Any:
    """The dashboard as create_app builds it (metrics and the Services panel's poller included)."""
    from dashboard.app import create_app

    return create_app()


@pytest.fixture
def with_health(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack's services with this issue's installs (requested before ``stack``, which uses it)."""
    plain = tests.stack.service_specs

    def specs(*ports: int) -> list[ServiceSpec]:
        return [replace(spec, app=APPS[spec.name]) for spec in plain(*ports)]

    monkeypatch.setattr(tests.stack, "service_specs", specs)


def row(page: Any, service: str) -> dict[str, str]:
    selector = f'[data-testid="service-health"] tbody tr[data-service="{service}"]'
    return {
        field: page.text_content(f'{selector} td[data-field="{field}"]') or ""
        for field in ("status", "cpu", "memory")
    } | {"data-status": page.get_attribute(selector, "data-status") or ""}


def test_the_services_panel_shows_health_cpu_and_memory(
    with_health: None, stack: RunningStack, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_selector('#connection-state[data-state="connected"]', timeout=10_000)
    panel = page.wait_for_selector('[data-testid="service-health"]')
    assert panel.is_visible()
    for service in ("agent", "webhook", "websocket"):
        page.wait_for_selector(
            f'[data-testid="service-health"] tr[data-service="{service}"][data-status="ok"]', timeout=20_000
        )
        shown = row(page, service)
        assert shown["status"] == "ok"
        assert re.fullmatch(r"\d[\d,]*\.\d %", shown["cpu"]), shown
        megabytes = re.fullmatch(r"([\d,]+\.\d) MiB", shown["memory"])
        assert megabytes and 20 < float(megabytes.group(1).replace(",", "")) < 2000, shown
    page.screenshot(path=str(tmp_path / "services.png"), full_page=True)

    # the same figures the service itself exposes (its RSS within a few MiB of what the panel shows)
    metrics = requests.get(
        f"{stack.specs['agent'].health_url.removesuffix('/health')}/metrics", timeout=5
    ).text
    (rss,) = [float(line.split()[-1]) for line in metrics.splitlines()
              if line.startswith("process_resident_memory_bytes{")]  # fmt: skip
    shown_mib = float(row(page, "agent")["memory"].split()[0].replace(",", ""))
    assert abs(shown_mib - rss / 2**20) < 30

    assert requests.get(f"{stack.base}/metrics", timeout=5).status_code == 404  # nginx does not pass it on

    stack.stop("webhook")  # the next reading (every ~10 s) shows it down
    page.wait_for_selector(
        '[data-testid="service-health"] tr[data-service="webhook"][data-status="down"]', timeout=30_000
    )
    down = row(page, "webhook")
    assert down["status"].startswith("down: unreachable") and down["cpu"] == "—" and down["memory"] == "—"
    assert row(page, "agent")["data-status"] == "ok"

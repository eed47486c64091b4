"""The dashboard's renderers and its calls to the agent API, in headless Chromium.

Only the websocket service runs (in a thread, no agent): events are fed to the page's renderers through
``window.bluefinaiRender`` and the agent API (``/api/...``) is answered by Playwright routes, so the states
that are slow or awkward to reach with the real stack (a degraded analyst, a breaker with its release time,
a 401, the agent unreachable) are checked here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import make_server

from dashboard.app import create_app
from tests.conftest import TOKEN

pytestmark = pytest.mark.e2e

HALTED = {
    "state": "HALTED", "reason": "daily loss -3.10% reached MAX_DAILY_LOSS 3.00%", "cause": "daily_loss",
    "since": "2022-01-05T14:02:00+00:00", "until": "2022-01-06T00:00:00+00:00", "day": "2022-01-05",
    "day_start_equity": 10_000.0, "peak_equity": 10_100.0, "daily_pnl": -310.0, "daily_return": -0.031,
    "drawdown": -0.0406,
}  # fmt: skip
ACTIVE = {**HALTED, "state": "ACTIVE", "reason": "", "cause": "", "until": None, "daily_pnl": 12.5,
          "daily_return": 0.00125, "drawdown": 0.0}  # fmt: skip
LIMITS = {
    "tolerance": "moderate", "max_position_size": 0.1, "risk_per_trade": 0.01, "max_daily_loss": 0.03,
    "max_drawdown": 0.15, "max_total_exposure": 1.0, "max_leverage": 5, "max_open_positions": 3,
}  # fmt: skip
DAY_TAIL = {
    "var_historical_95": 120.5, "var_parametric_95": 110.0, "es_historical_95": 150.25, "es_parametric_95": 140.0,
    "var_historical_99": 180.0, "var_parametric_99": 170.0, "es_historical_99": 210.75, "es_parametric_99": 200.0,
}  # fmt: skip
POSITION = {
    "symbol": "BTC-PERP", "quantity": 0.021, "entry_price": 46818.36, "mark": 46809.0, "notional": 982.99,
    "unrealized_pnl": -0.2, "liquidation_price": 32177.57, "liquidation_distance_pct": 0.3126,
    "liquidation_distance_atr": 93.04, "funding_cost_per_day": 0.35,
}  # fmt: skip


def status(**overrides: Any) -> dict[str, Any]:
    base = {
        "state": "running", "reason": "", "trading_state": ACTIVE, "exchange": "paper", "analyst": "claude",
        "analyst_degraded": False, "analyst_problem": "", "feed": {"BTC-PERP": "replay"},
        "stale": {"BTC-PERP": False}, "prices": {"BTC-PERP": 46809.0}, "balance": 10_000.0,
        "equity": 10_012.5, "unrealized_pnl": 12.5, "fees_paid": 0.5,
    }  # fmt: skip
    return {**base, **overrides}


def risk(
    state: dict[str, Any], day: dict[str, Any] | None, positions: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "state": state,
        "limits": LIMITS,
        "metrics": {
            "equity": 9_690.0,
            "exposure": {"gross": 982.99, "net": 982.99, "gross_of_equity": 0.1014, "by_symbol": {},
                         "correlated_groups": [], "largest_correlated_net": 0.0},
            "var_es_usd": {"hour": None, "day": day},
            "hourly_returns_used": 5 if day is None else 240,
            "drawdown": {"current": -0.0406, "max_to_date": -0.052, "projected_24h_95": -0.0123},
            "positions": positions,
        },
    }  # fmt: skip


@dataclass
class FakeApi:
    """Answers ``/api/...`` for the page: ``answers[path]`` is (status, body) or "abort" (network error)."""

    answers: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, str, Any, str | None]] = field(default_factory=list)

    def handle(self, route: Any) -> None:
        request = route.request
        path = "/" + request.url.split("/", 3)[3].split("?")[0]
        body = json.loads(request.post_data) if request.post_data else None
        self.requests.append((request.method, path, body, request.headers.get("authorization")))
        answer = self.answers.get(path, (404, {"error": "not found"}))
        if answer == "abort":
            route.abort("connectionrefused")
        else:
            route.fulfill(status=answer[0], content_type="application/json", body=json.dumps(answer[1]))

    def posts(self, path: str) -> list[Any]:
        return [body for method, p, body, _ in self.requests if method == "POST" and p == path]


@pytest.fixture
def dashboard(make_settings: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(make_settings()), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dashboard", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi({"/api/performance": (200, {"overall": {"trade_count": 0}})})


@pytest.fixture
def page(browser: Any, dashboard: str, api: FakeApi) -> Any:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.route("**/api/**", api.handle)
    page.goto(f"{dashboard}/#token={TOKEN}")
    page.wait_for_selector('#connection-state[data-state="connected"]', timeout=10_000)
    return page


def feed(page: Any, event: str, data: dict[str, Any]) -> None:
    page.evaluate("([name, data]) => window.bluefinaiRender[name](data)", [event, data])


def test_the_degraded_analyst_banner_comes_and_goes_next_to_the_source_note(page: Any) -> None:
    feed(page, "status", status())
    assert page.text_content("#banner") == "Replayed prices: real candles from a file, not the live market."
    assert page.query_selector_all("#alerts > *") == []

    problem = "circuit open after 3 failures: <img src=x onerror=alert(1)>"
    feed(page, "status", status(analyst_degraded=True, analyst_problem=problem))
    alert = page.wait_for_selector("#alert-analyst", state="visible")
    assert alert.text_content() == f"Analyst claude degraded: {problem} — the fallback decides"
    assert page.query_selector("#alerts img") is None  # text, never HTML
    assert page.is_visible("#banner")  # the data-source note stays

    # paused and degraded at once: two alerts, and the source note still there
    feed(page, "status", status(state="paused", reason="exchange unreadable", analyst_degraded=True,
                                analyst_problem="timeout"))  # fmt: skip
    assert page.text_content("#alert-paused") == "Trading paused: exchange unreadable"
    assert page.text_content("#alert-analyst") == "Analyst claude degraded: timeout — the fallback decides"
    assert "not the live market" in page.text_content("#banner")

    feed(page, "status", status())  # recovered, running
    assert page.query_selector("#alert-analyst") is None and page.query_selector("#alert-paused") is None
    assert page.is_visible("#banner")

    feed(page, "status", status(stale={"BTC-PERP": True}))
    assert page.text_content("#banner").startswith("Market data is stale")


def test_the_trading_state_badge_and_the_reset_button(page: Any) -> None:
    feed(page, "status", status(trading_state=HALTED))
    badge = page.query_selector("#trading-state")
    assert badge.get_attribute("data-state") == "HALTED"
    assert badge.text_content() == (
        "HALTED: daily loss -3.10% reached MAX_DAILY_LOSS 3.00% (until 2022-01-06 00:00 UTC)"
    )
    assert badge.get_attribute("title") == (
        "daily loss -3.10% reached MAX_DAILY_LOSS 3.00% since 2022-01-05 14:02:00 UTC"
    )
    assert (
        page.evaluate("getComputedStyle(document.getElementById('trading-state')).color")
        == "rgb(254, 202, 202)"
    )
    assert page.is_visible("#reset-active")
    assert page.text_content("#risk-daily-pnl") == "-310.00" and "neg" in page.get_attribute(
        "#risk-daily-pnl", "class"
    )
    assert page.text_content("#risk-daily-return") == "-3.10% today (2022-01-05)"

    no_day_yet = {**ACTIVE, "day": None, "day_start_equity": 0.0, "daily_pnl": 0.0, "daily_return": 0.0}
    feed(page, "status", status(trading_state=no_day_yet))
    assert page.text_content("#risk-daily-pnl") == "—"
    assert page.text_content("#risk-daily-return") == "no start-of-day equity yet"

    reducing = {**HALTED, "state": "REDUCING", "reason": "drawdown -12.00% past 75% of MAX_DRAWDOWN"}
    feed(page, "status", status(trading_state=reducing))
    assert badge.get_attribute("data-state") == "REDUCING"
    assert (
        page.evaluate("getComputedStyle(document.getElementById('trading-state')).color")
        == "rgb(245, 158, 11)"
    )

    killed = {**HALTED, "cause": "kill", "reason": "kill switch", "until": None}
    feed(page, "risk", risk(killed, None, []))  # the risk event carries the same state
    assert badge.text_content() == "HALTED: kill switch (until reset)"

    feed(page, "status", status(trading_state=ACTIVE))
    assert badge.text_content() == "ACTIVE" and badge.get_attribute("data-state") == "ACTIVE"
    assert (
        page.evaluate("getComputedStyle(document.getElementById('trading-state')).color")
        == "rgb(34, 197, 94)"
    )
    assert not page.is_visible("#reset-active")


def test_the_risk_panel_shows_metrics_limits_and_positions(page: Any) -> None:
    feed(page, "risk", risk(ACTIVE, DAY_TAIL, [POSITION]))
    assert page.text_content("#risk-equity") == "9,690.00"
    assert page.text_content("#risk-peak") == "peak 10,100.00"
    assert page.text_content("#risk-drawdown") == "-4.06%"
    assert page.text_content("#risk-drawdown-detail") == "max -5.20% · 24 h 95% -1.23%"
    assert page.text_content("#risk-exposure") == "982.99"
    assert page.text_content("#risk-exposure-detail") == "10.1% of equity · net 982.99"
    cells = {i: page.text_content(f"#{i}") for i in ("var-95", "var-99", "es-95", "es-99")}
    assert cells == {"var-95": "120.50", "var-99": "180.00", "es-95": "150.25", "es-99": "210.75"}
    assert page.text_content("#risk-var-note").startswith("From 240 hourly returns")
    limits = {
        el.get_attribute("data-limit"): el.text_content() for el in page.query_selector_all("[data-limit]")
    }
    assert limits == {
        "tolerance": "moderate", "max_position_size": "10.00%", "risk_per_trade": "1.00%",
        "max_daily_loss": "3.00%", "max_drawdown": "15.00%", "max_total_exposure": "100.00%",
        "max_leverage": "5×", "max_open_positions": "3",
    }  # fmt: skip
    row = page.query_selector('#risk-positions tbody tr[data-symbol="BTC-PERP"]')
    assert [td.text_content() for td in row.query_selector_all("td")] == [
        "BTC-PERP", "0.021", "46,809.00", "982.99", "32,177.57", "31.26%", "93.0 ATR", "0.35",
    ]  # fmt: skip
    assert row.query_selector("td:last-child").get_attribute("class") == "neg"  # it pays funding

    # too little history: the tail metrics say so; no position: nothing at risk
    feed(page, "risk", risk(ACTIVE, None, [POSITION]))
    assert page.text_content("#var-95") == "—"
    assert page.text_content("#risk-var-note") == "VaR / ES: needs more history (5 hourly returns so far)."
    feed(page, "risk", risk(ACTIVE, None, []))
    assert page.text_content("#risk-var-note") == "VaR / ES: no open positions, nothing at risk."
    assert page.text_content("#risk-positions tbody") == "no open positions"


def test_an_open_positions_mark_and_unrealised_pnl_follow_the_market(page: Any) -> None:
    """Between fills the position row's mark and unrealised PnL move with each price (market ticks and
    status heartbeats); a flat market's rows are gone, other markets' prices leave the row alone."""
    short = {"symbol": "BTC-PERP", "quantity": -0.5, "entry_price": 40_000.0, "mark_price": 40_000.0,
             "unrealized_pnl": 0.0, "realized_pnl": 12.0}  # fmt: skip
    feed(page, "position", short)
    row = '#positions tbody tr[data-symbol="BTC-PERP"]'

    def shown() -> list[str]:
        return [td.text_content() for td in page.query_selector_all(f"{row} td:not(.actions)")]

    assert shown() == ["BTC-PERP", "SHORT", "0.5", "40,000.00", "40,000.00", "0.00", "12.00"]
    feed(page, "market", {"symbol": "BTC-PERP", "price": 40_250.5, "time": "2022-01-05T14:03:00+00:00",
                          "source": "replay", "stale": False})  # fmt: skip
    assert shown()[4:6] == ["40,250.50", "-125.25"]  # a short loses when the price rises
    assert page.get_attribute(f"{row} td:nth-child(6)", "class") == "unrealised neg"
    feed(page, "market", {"symbol": "ETH-PERP", "price": 3_000.0, "time": "2022-01-05T14:03:00+00:00",
                          "source": "replay", "stale": False})  # fmt: skip
    assert shown()[4:6] == ["40,250.50", "-125.25"]
    feed(page, "status", status(prices={"BTC-PERP": 39_900.0}))
    assert shown()[4:6] == ["39,900.00", "50.00"]
    assert page.get_attribute(f"{row} td:nth-child(6)", "class") == "unrealised pos"
    feed(page, "position", {**short, "quantity": 0.0})
    assert page.query_selector(row) is None
    feed(page, "market", {"symbol": "BTC-PERP", "price": 41_000.0, "time": "2022-01-05T14:04:00+00:00",
                          "source": "replay", "stale": False})  # fmt: skip
    assert page.query_selector(row) is None


def test_vetoed_decisions_show_their_reason_and_are_counted(page: Any) -> None:
    decision = {"analyst": "rules", "confidence": 0.7, "rationale": "RSI14=40.2 " * 30, "quantity": 0.0}
    feed(page, "decision", {**decision, "id": 1, "signal_id": 1, "action": "open_long", "risk_approved": True,
                            "risk_reason": "", "quantity": 0.021})  # fmt: skip
    feed(page, "decision", {**decision, "id": 2, "signal_id": 2, "action": "open_long", "risk_approved": False,
                            "risk_reason": "trading HALTED: kill switch"})  # fmt: skip
    feed(page, "decision", {**decision, "id": 3, "signal_id": 3, "action": "hold", "risk_approved": False,
                            "risk_reason": "analyst decided to hold"})  # fmt: skip
    assert page.text_content("#risk-vetoes") == "1"
    assert page.text_content("#risk-vetoes-detail") == "of 3 decisions shown"
    vetoed = page.query_selector('#decisions tr[data-signal-id="2"]')
    assert vetoed.query_selector("td:nth-child(4)").text_content() == "vetoed"
    reason = vetoed.query_selector(".veto-reason")
    assert reason.text_content() == "Risk: trading HALTED: kill switch" and reason.is_visible()
    assert page.text_content('#decisions tr[data-signal-id="3"] td:nth-child(4)') == "no trade"
    assert page.text_content('#decisions tr[data-signal-id="1"] td:nth-child(4)') == "approved 0.021"


def test_the_kill_switch_reports_a_refused_token_a_network_error_and_the_outcome(
    page: Any, api: FakeApi
) -> None:
    answers: list[bool] = []
    page.on("dialog", lambda dialog: dialog.accept() if answers.pop(0) else dialog.dismiss())

    answers.append(False)
    page.click("#kill-switch")
    page.wait_for_selector('#control-result[data-kind="info"]')
    assert page.text_content("#control-result") == "Kill switch not sent."
    assert api.posts("/api/control/kill") == []

    api.answers["/api/control/kill"] = (401, {"error": "unauthorized"})
    answers.append(True)
    page.click("#kill-switch")
    page.wait_for_selector('#control-result[data-kind="error"]')
    assert "refused the API token (401)" in page.text_content("#control-result")

    api.answers["/api/control/kill"] = "abort"
    answers.append(True)
    page.click("#kill-switch")
    page.wait_for_function(
        "document.getElementById('control-result').textContent.includes('could not reach the agent API')"
    )
    assert page.get_attribute("#control-result", "data-kind") == "error"

    api.answers["/api/control/kill"] = (
        200,
        {"state": "HALTED", "cancelled_orders": ["a", "b"], "closed_positions": [], "failed_cancels": []},
    )
    answers.append(True)
    page.click("#kill-switch")
    page.wait_for_selector('#control-result[data-kind="halted"]')
    assert page.text_content("#control-result") == "halted: 2 orders cancelled, 0 positions closed"
    assert api.posts("/api/control/kill")[-1] == {
        "close_positions": False,
        "reason": "kill switch (dashboard)",
    }
    assert {auth for _, p, _, auth in api.requests if p == "/api/control/kill"} == {f"Bearer {TOKEN}"}

    page.check("#kill-close")
    api.answers["/api/control/kill"] = (
        200,
        # the real answer's shape (agent.engine.control.KillReport): lists, and what could not be done
        {"state": "HALTED", "cancelled_orders": ["c"], "closed_positions": ["BTC-PERP"],
         "failed_cancels": [{"client_id": "d", "symbol": "BTC-PERP", "error": "Temporary: unreachable"}],
         "positions_not_closed": []},
    )  # fmt: skip
    answers.append(True)
    page.click("#kill-switch")
    page.wait_for_function(
        "document.getElementById('control-result').textContent.endsWith('(see the API answer)')"
    )
    assert (
        page.text_content("#control-result")
        == "halted: 1 order cancelled, 1 position closed; 1 action failed (see the API answer)"
    )
    assert api.posts("/api/control/kill")[-1]["close_positions"] is True

    # reset: only offered when not ACTIVE; its answer updates the badge at once
    feed(
        page,
        "status",
        status(trading_state={**HALTED, "cause": "kill", "reason": "kill switch", "until": None}),
    )
    api.answers["/api/control/state"] = (200, {**ACTIVE, "reason": ""})
    answers.append(True)
    page.click("#reset-active")
    page.wait_for_selector('#trading-state[data-state="ACTIVE"]')
    assert api.posts("/api/control/state") == [{"state": "ACTIVE", "reason": "reset from the dashboard"}]
    assert page.text_content("#control-result") == "reset: trading is ACTIVE"
    assert not page.is_visible("#reset-active")


def test_the_performance_card(browser: Any, dashboard: str) -> None:
    overall = {"trade_count": 12, "win_rate": 0.5833, "total_return": -0.0123, "sharpe": None, "max_drawdown": -0.045,
               "expectancy_r": 0.42}  # fmt: skip
    api = FakeApi({"/api/performance": (200, {"overall": overall, "by_signal_source": {}})})
    page = browser.new_page()
    page.route("**/api/**", api.handle)
    page.goto(f"{dashboard}/#token={TOKEN}")
    page.wait_for_function("document.getElementById('perf-trades').textContent === '12'")
    values = {
        i: page.text_content(f"#perf-{i}") for i in ("win-rate", "return", "sharpe", "max-dd", "expectancy")
    }
    assert values == {"win-rate": "58.3%", "return": "-1.23%", "sharpe": "—", "max-dd": "-4.50%",
                      "expectancy": "0.42 R"}  # fmt: skip
    assert page.text_content("#perf-status").startswith("updated ")

    api.answers["/api/performance"] = (401, {"error": "unauthorized"})
    page.evaluate("window.bluefinaiRenderPerformance({overall: {}})")  # all null: dashes
    assert page.text_content("#perf-trades") == "—" and page.text_content("#perf-expectancy") == "—"
    page.evaluate(
        "window.bluefinaiRender.trade({id: 1, symbol: 'BTC-PERP', side: 'BUY', pnl: 1})"
    )  # refreshes
    page.wait_for_selector('#perf-status[data-kind="error"]', timeout=5_000)
    assert "refused the API token (401)" in page.text_content("#perf-status")


def test_a_market_event_keeps_the_stale_banner_and_names_synthetic_prices(page: Any) -> None:
    feed(page, "status", status(stale={"BTC-PERP": True}))
    assert page.text_content('[data-testid="source-banner"]').startswith("Market data is stale")
    tick = {"symbol": "BTC-PERP", "price": 46810.0, "time": "2022-01-01T04:01:00+00:00", "source": "replay"}
    feed(page, "market", {**tick, "stale": True})
    assert page.text_content("#banner").startswith("Market data is stale")  # not replaced by the source note
    feed(page, "market", {**tick, "source": "synthetic", "stale": False})
    assert (
        page.text_content("#banner")
        == "Synthetic prices: a generated random walk for demos, not a real market."
    )
    assert page.text_content("#feed-source") == "synthetic prices" and page.is_visible("#banner")

"""The dashboard page: the risk state, kill switch and performance elements, and the script's contract with
the template (every element it looks up exists; values only ever go in as text)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from agent.risk.presets import PRESETS
from dashboard.app import create_app
from shared.db import Database, DecisionRow, SignalRow
from tests.conftest import TOKEN

STATIC = Path(__file__).resolve().parents[3] / "websocket" / "dashboard" / "static"
SCRIPT = (STATIC / "dashboard.js").read_text()


class Elements(HTMLParser):
    """Every start tag of a page, as (tag, attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def by_id(self) -> dict[str, tuple[str, dict[str, str | None]]]:
        return {a["id"]: (t, a) for t, a in self.tags if a.get("id")}  # type: ignore[misc]


@pytest.fixture
def app(make_settings: Any) -> Flask:
    return create_app(make_settings())


@pytest.fixture
def page(app: Flask) -> Elements:
    parser = Elements()
    parser.feed(app.test_client().get("/").get_data(as_text=True))
    return parser


def test_the_header_has_the_trading_state_badge_and_the_controls(page: Elements) -> None:
    ids = page.by_id()
    assert ids["trading-state"][1]["class"] == "badge trading-state"
    assert ids["kill-switch"][0] == "button" and ids["kill-switch"][1]["class"] == "danger"
    assert ids["kill-close"][1]["type"] == "checkbox" and "checked" not in ids["kill-close"][1]
    assert "hidden" in ids["reset-active"][1]  # shown only when trading is not ACTIVE
    assert ids["control-result"][1]["role"] == "status" and "hidden" in ids["control-result"][1]
    # two banner areas: the data-source note and the alerts
    assert "banner" in ids and "alerts" in ids


def test_the_risk_and_performance_panels_are_there(page: Elements) -> None:
    ids = page.by_id()
    for element in (
        "risk-equity", "risk-daily-pnl", "risk-daily-return", "risk-drawdown", "risk-drawdown-detail",
        "risk-exposure", "risk-exposure-detail", "risk-vetoes", "risk-vetoes-detail", "var-95", "var-99",
        "es-95", "es-99", "risk-var-note", "risk-positions", "risk-limits",
        "perf-trades", "perf-win-rate", "perf-return", "perf-sharpe", "perf-max-dd", "perf-expectancy", "perf-status",
    ):  # fmt: skip
        assert element in ids, element
    limits = [a["data-limit"] for _, a in page.tags if "data-limit" in a]
    assert {"tolerance", "max_position_size", "risk_per_trade", "max_daily_loss", "max_drawdown"} <= set(
        limits
    )


def test_the_limits_shown_are_fields_of_the_risk_policy(page: Elements) -> None:
    fields = set(PRESETS["moderate"].as_dict())
    formats = {a["data-limit"]: a["data-format"] for _, a in page.tags if "data-limit" in a}
    assert set(formats) <= fields
    assert set(formats.values()) <= {"pct", "times", "int", "text"}  # the formats dashboard.js knows
    for name in ("pct", "times", "int", "text"):
        assert f"{name}: (v) =>" in SCRIPT


def test_every_element_the_script_looks_up_exists(page: Elements) -> None:
    ids = set(page.by_id())
    looked_up = set(re.findall(r"""(?:\$|setText)\("([a-z0-9-]+)"[,)]""", SCRIPT))
    looked_up |= set(re.findall(r"""querySelector(?:All)?\(["'`]#([a-z0-9-]+)""", SCRIPT))
    assert looked_up, "the pattern no longer finds the script's lookups"
    assert looked_up <= ids, sorted(looked_up - ids)


def test_the_script_inserts_text_never_html() -> None:
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in SCRIPT, sink
    assert "window.bluefinaiRender = render" in SCRIPT


def test_the_script_calls_the_agent_api_with_the_token() -> None:
    assert (
        '"/api/control/kill"' in SCRIPT
        and '"/api/control/state"' in SCRIPT
        and '"/api/performance"' in SCRIPT
    )
    assert "Authorization: `Bearer ${token}`" in SCRIPT
    assert "PERFORMANCE_EVERY_MS = 15000" in SCRIPT


def test_the_stylesheet_hides_hidden_elements_outside_root() -> None:
    css = (STATIC / "dashboard.css").read_text()
    root = css[css.index(":root") : css.index("}", css.index(":root"))]
    assert "[hidden]" not in root  # a rule inside :root's declarations would be dropped or nested
    assert re.search(r"^\[hidden\] \{ display: none !important; \}$", css, re.M)


def test_the_snapshot_carries_the_decisions_with_their_veto(app: Flask) -> None:
    db: Database = app.extensions["db"]
    with db.session() as session:
        signal = SignalRow(idempotency_key="k", source="tradingview", symbol="BTC-PERP", action="buy", raw={})
        session.add(signal)
        session.flush()
        session.add(
            DecisionRow(signal_id=signal.id, analyst="rules", action="open_long", confidence=0.7, rationale="r",
                        risk_approved=False, risk_reason="trading HALTED: kill switch")
        )  # fmt: skip
    sio = app.extensions["bluefinai.socketio"]
    client = sio.test_client(app, auth={"token": TOKEN})
    (snapshot,) = [m["args"][0] for m in client.get_received() if m["name"] == "snapshot"]
    (decision,) = snapshot["decisions"]
    assert decision["signal_id"] == snapshot["signals"][0]["id"]
    assert decision["risk_approved"] is False and decision["risk_reason"] == "trading HALTED: kill switch"


def test_the_charts_have_their_elements_and_their_library(app: Flask, page: Elements) -> None:
    charts = (STATIC / "charts.js").read_text()
    looked_up = set(re.findall(r"""\$\("([a-z0-9-]+)"\)""", charts))
    assert {"price-chart", "equity-chart", "chart-symbol", "chart-timeframe"} <= looked_up
    assert looked_up <= set(page.by_id()), sorted(looked_up - set(page.by_id()))
    ids = page.by_id()
    assert ids["price-chart"][1]["data-testid"] == "price-chart"
    assert ids["equity-chart"][1]["data-testid"] == "equity-chart"
    values = [a.get("value") for t, a in page.tags if t == "option"]
    # the chart's market, the algo form's, and the market filters of signals, positions, orders, fills,
    # funding and trades
    assert values.count("BTC-PERP") == 8
    library = app.test_client().get("/static/vendor/lightweight-charts.js")
    assert library.status_code == 200 and library.mimetype == "application/javascript"
    assert b"LightweightCharts" in library.get_data()
    assert "textContent" in charts and "innerHTML" not in charts


def test_the_tables_tools_have_their_filters_and_pager(page: Elements) -> None:
    tables = (STATIC / "tables.js").read_text()
    paths = set(re.findall(r'path: "(/api/tables/[a-z]+)"', tables))
    names = {"signals", "trades", "orders", "decisions", "positions", "fills", "funding"}
    assert paths == {f"/api/tables/{name}" for name in names}
    ids = page.by_id()
    for name in names:  # each table has its tools (filters, pager) and its table
        assert ids[f"{name}-tools"][1]["data-testid"] == f"{name}-tools" and ids[name][0] == "table"
    filters = {a.get("data-filter") for t, a in page.tags if t == "select" and a.get("data-filter")}
    # the query fields of /api/tables/*
    assert filters == {"symbol", "action", "outcome", "side", "state", "verdict"}
    pages = [a.get("data-page") for t, a in page.tags if t == "button" and a.get("data-page")]
    assert pages == ["prev", "next"] * len(names)


@pytest.mark.parametrize("name", ["algos.js", "feed.js", "breakdowns.js"])
def test_the_panels_scripts_find_their_elements_and_write_text_only(page: Elements, name: str) -> None:
    script = (STATIC / name).read_text()
    looked_up = set(re.findall(r"""\$\("([a-z0-9-]+)"\)""", script))
    looked_up |= set(re.findall(r"""getElementById\("([a-z0-9-]+)"\)""", script))
    looked_up |= set(re.findall(r"""fill\("([a-z0-9-]+)",""", script))
    assert looked_up and looked_up <= set(page.by_id()), sorted(looked_up - set(page.by_id()))
    assert "textContent" in script and "innerHTML" not in script
    assert f"filename='{name}'" in (STATIC.parent / "templates" / "index.html").read_text()


def test_the_feed_is_bounded_and_the_state_control_has_the_engines_states(page: Elements) -> None:
    from agent.risk.state import STATES

    feed = (STATIC / "feed.js").read_text()
    assert "const MAX_EVENTS = 200;" in feed and "events.splice(0, events.length - MAX_EVENTS)" in feed
    buttons = [a.get("data-state") for t, a in page.tags if t == "button" and a.get("data-state")]
    assert tuple(buttons) == STATES
    assert page.by_id()["state-control"][1]["data-testid"] == "trading-state-control"

"""Every veto counted by rule (backtest report, /api/performance), a Kelly veto of a whole source announced
once, and the gate's reading of a TradingView strategy's adds and partial exits."""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd
import pytest
from flask.testing import FlaskClient

from agent.analysis.follow import FollowAnalyst
from agent.analytics.performance import compute_metrics
from agent.analytics.vetoes import SourceVeto, VetoSummary, summarise, veto_rule, veto_summary
from agent.backtest.report import report_html, report_json, vetoes_section
from agent.engine.engine import Engine
from agent.risk.gate import assess
from agent.risk.presets import PRESETS
from agent.risk.sizing import TradeStats, kelly
from shared.db import Database, SignalRow
from shared.models import Decision, DecisionAction, Position, Signal, SignalAction
from shared.notify import classify
from tests.conftest import TOKEN
from tests.unit.agent.risk.test_risk_gate import context

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOSER = "tradingview:Loser"
LOSING = TradeStats(trades=60, wins=10, losses=50, average_win=1.0, average_loss=1.0, losses_in_a_row=1)


def tv_signal(action: SignalAction, raw: dict[str, Any]) -> Signal:
    return Signal("k", "tradingview:S", "BTC-PERP", action, raw=raw)


ADD = {"action": "buy", "market_position": "long", "prev_market_position": "long"}
REDUCE = {"action": "sell", "market_position": "long", "prev_market_position": "long"}


@pytest.mark.parametrize("raw", [ADD, REDUCE])
@pytest.mark.parametrize("held", [0.0, 0.5])
def test_an_add_or_partial_exit_keeps_the_position_and_never_opens(raw: dict[str, Any], held: float) -> None:
    opening = Decision(DecisionAction.OPEN_LONG, 0.9, "t", "follow")
    ctx = context(position=Position("BTC-PERP", held, 40_000.0))
    verdict = assess(opening, tv_signal(SignalAction.BUY, raw), ctx, PRESETS["moderate"])
    assert not verdict.approved and verdict.quantity == 0 and verdict.details["rule"] == "position_kept"


def test_an_add_against_our_opposite_position_closes_it() -> None:
    ctx = context(position=Position("BTC-PERP", -0.3, 40_000.0))
    hold = Decision(DecisionAction.HOLD, 0.0, "t", "rules")
    verdict = assess(hold, tv_signal(SignalAction.BUY, REDUCE), ctx, PRESETS["moderate"])
    assert verdict.approved and verdict.reduce_only and verdict.quantity == pytest.approx(0.3)
    assert verdict.exit_kind == "signal_reversed"


def test_a_flat_strategy_closes_whatever_the_order_side() -> None:
    raw = {"action": "sell", "market_position": "flat", "prev_market_position": "long"}
    ctx = context(position=Position("BTC-PERP", 0.2, 40_000.0))
    close = Decision(DecisionAction.CLOSE, 1.0, "t", "follow")
    verdict = assess(close, tv_signal(SignalAction.CLOSE, raw), ctx, PRESETS["moderate"])
    assert verdict.approved and verdict.reduce_only and verdict.quantity == pytest.approx(0.2)


def test_vetoes_are_counted_by_rule_including_a_refused_flip() -> None:
    rows: list[Any] = [
        (False, {"rule": "kelly", "vetoed_by": "no edge for A: x"}, "no edge for A: x", "A", None),
        (False, {"rule": "kelly", "vetoed_by": "no edge for A: y"}, "", "A", None),
        (
            True,
            {"rule": "kelly", "vetoed_by": "no edge for B"},
            "close only",
            "B",
            None,
        ),  # a flip that closed
        (False, {"rule": "hold"}, "analyst decided to hold", "A", None),
        (True, {"checks": ["kelly"]}, "long 0.1", "A", None),  # traded: not a veto
        (False, {}, "old row", "A", None),
    ]
    summary = summarise(rows)
    assert summary.by_rule == {"kelly": 3, "hold": 1, "other": 1} and summary.total == 5
    assert [(s.source, s.vetoes, s.reason) for s in summary.sources_vetoed] == [
        ("A", 2, "no edge for A: x"), ("B", 1, "no edge for B"),
    ]  # fmt: skip
    assert veto_rule(True, {"checks": []}) is None


def test_the_report_lists_the_vetoes_by_rule_and_the_sources_vetoed() -> None:
    summary = VetoSummary(
        {"kelly": 7, "expired": 1}, [SourceVeto(LOSER, 7, "2022-01-08T00:00:00+00:00", "no")]
    )
    equity = pd.Series([10_000.0, 10_000.0], index=pd.date_range("2022-01-01", periods=2, freq="D", tz="UTC"))
    metrics = compute_metrics(equity, [], starting_equity=10_000.0)
    data = json.loads(report_json(metrics, None, summary))
    assert data["vetoes"] == {
        "total": 8, "by_rule": {"kelly": 7, "expired": 1},
        "sources_vetoed": [{"source": LOSER, "vetoes": 7, "first_at": "2022-01-08T00:00:00+00:00", "reason": "no"}],
    }  # fmt: skip
    section = vetoes_section(summary)
    assert "<h2>Vetoes by rule</h2>" in section and "<td>7</td>" in section and LOSER in section
    assert section in report_html("t", metrics, [], {}, None, summary)
    assert vetoes_section(None) == "" and "vetoes" not in json.loads(report_json(metrics))


def test_a_kelly_veto_is_announced_once_per_source_and_counted_in_performance(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert kelly(LOSING, PRESETS["moderate"]).fraction <= 0
    engine: Engine = client.application.extensions["engine"]
    db: Database = client.application.extensions["db"]
    engine.analyst = FollowAnalyst()
    monkeypatch.setattr(
        engine, "trade_stats", lambda source=None, refresh=True: LOSING if source == LOSER else TradeStats()
    )
    with db.session() as session:
        for key in ("a", "b"):
            session.add(
                SignalRow(idempotency_key=key, source=LOSER, symbol="BTC-PERP", action="buy",
                          strategy="Loser", raw={"action": "buy", "contracts": 2, "note": "kept"})
            )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="agent.engine.engine"):
        engine.process_pending_signals()
    (announced,) = [r for r in caplog.records if r.getMessage() == "source_vetoed"]  # once, for two vetoes
    fields = announced.fields  # type: ignore[attr-defined]
    assert announced.levelno == logging.WARNING and fields["source"] == LOSER
    assert (fields["trades"], fields["wins"], fields["losses"]) == (60, 10, 50)

    body = client.get("/api/performance", headers=AUTH).get_json()
    assert body["vetoes"]["by_rule"] == {"kelly": 2}
    (source,) = body["vetoes"]["sources_vetoed"]
    assert source["source"] == LOSER and source["vetoes"] == 2 and f"no edge for {LOSER}" in source["reason"]
    assert veto_summary(db).by_rule == {"kelly": 2}
    signals = client.get("/api/signals", headers=AUTH).get_json()["signals"]
    assert {"contracts": 2, "note": "kept"} in [s["fields"] for s in signals]


def test_source_vetoed_notifies_as_a_breaker() -> None:
    notice = classify("source_vetoed", {"source": LOSER, "reason": "no edge"}, logging.WARNING)
    assert notice is not None and notice[0] == "breaker" and notice[1] is None and LOSER in notice[2]

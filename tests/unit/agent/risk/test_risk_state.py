"""Trading states and breakers: hand-computed thresholds, release at the next UTC day, persistence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.journal.store import DatabaseStore
from agent.risk.presets import PRESETS
from agent.risk.state import TradingGuard
from shared.db import Database

MODERATE = PRESETS["moderate"]  # MAX_DAILY_LOSS 3 %, MAX_DRAWDOWN 15 %, REDUCE_AT 0.75
DAY = datetime(2022, 1, 5, 0, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'state.db'}")
    database.migrate()
    return database


def test_daily_loss_reduces_then_halts_until_the_next_utc_day(db: Database) -> None:
    guard = TradingGuard(DatabaseStore(db), MODERATE)
    assert not guard.update(DAY + timedelta(hours=1), 10_000.0)  # the day starts at 10,000
    assert guard.update(DAY + timedelta(hours=2), 9_770.0)  # -2.30 % is past 75 % of 3 %: REDUCING
    assert guard.state == "REDUCING" and "daily loss -2.30%" in guard.status.reason
    assert guard.update(DAY + timedelta(hours=3), 9_700.0)  # -3.00 %: HALTED
    assert guard.state == "HALTED" and guard.status.cause == "daily_loss"
    assert guard.status.until == (DAY + timedelta(days=1)).isoformat()
    assert not guard.update(DAY + timedelta(hours=23, minutes=59), 9_900.0)  # recovering does not release
    assert guard.state == "HALTED"
    assert guard.update(DAY + timedelta(days=1), 9_900.0)  # the next UTC day: ACTIVE, counting from 9,900
    assert guard.state == "ACTIVE" and guard.status.day_start_equity == 9_900.0


def test_drawdown_from_the_peak_halts_and_the_peak_is_rebased_at_release(db: Database) -> None:
    guard = TradingGuard(DatabaseStore(db), MODERATE)
    guard.update(DAY, 12_000.0)
    guard.update(DAY + timedelta(days=1), 10_300.0)  # a new day starting at 10,300: daily loss 0
    guard.update(DAY + timedelta(days=1, hours=1), 10_250.0)  # -14.6 % from 12,000 (past 75 % of 15 %)
    assert guard.state == "REDUCING" and guard.status.cause == "drawdown"
    guard.update(DAY + timedelta(days=1, hours=2), 10_190.0)  # -15.08 % but daily -1.07 %: drawdown halts
    assert guard.state == "HALTED" and "drawdown -15.08%" in guard.status.reason
    guard.update(DAY + timedelta(days=2), 10_190.0)
    assert guard.state == "ACTIVE" and guard.status.peak_equity == 10_190.0


def test_the_kill_switch_halts_until_a_manual_reset_and_survives_a_restart(db: Database) -> None:
    guard = TradingGuard(DatabaseStore(db), MODERATE)
    guard.update(DAY, 10_000.0)
    guard.kill(DAY + timedelta(hours=1), "operator pressed the button")
    assert guard.state == "HALTED" and guard.status.until is None
    restarted = TradingGuard(DatabaseStore(db), MODERATE)
    assert restarted.state == "HALTED" and restarted.status.reason == "operator pressed the button"
    restarted.update(DAY + timedelta(days=3), 10_000.0)
    assert restarted.state == "HALTED"  # no automatic release of a kill
    restarted.set_manual("ACTIVE", DAY + timedelta(days=3, hours=1), 9_000.0)
    assert restarted.state == "ACTIVE" and restarted.status.day_start_equity == 9_000.0
    assert restarted.status.peak_equity == 9_000.0  # counting starts afresh: no instant re-halt
    assert not restarted.update(DAY + timedelta(days=3, hours=2), 9_000.0)
    with pytest.raises(ValueError, match="state must be one of"):
        restarted.set_manual("PAUSED", DAY, 1.0)  # type: ignore[arg-type]


def test_a_fatal_halt_is_held_across_a_restart_and_new_days_until_a_reset(db: Database) -> None:
    guard = TradingGuard(DatabaseStore(db), MODERATE)
    guard.update(DAY, 10_000.0)
    guard.halt(DAY + timedelta(hours=1), "fatal", "fatal error: account frozen")
    restarted = TradingGuard(DatabaseStore(db), MODERATE)
    assert (restarted.state, restarted.status.cause) == ("HALTED", "fatal") and restarted.status.until is None
    assert restarted.status.reason == "fatal error: account frozen"
    assert not restarted.update(DAY + timedelta(days=2), 12_000.0) and restarted.state == "HALTED"
    restarted.set_manual("ACTIVE", DAY + timedelta(days=2, hours=1), 12_000.0)
    assert restarted.state == "ACTIVE" and restarted.status.cause == ""


def test_the_view_reports_daily_pnl_and_drawdown(db: Database) -> None:
    guard = TradingGuard(DatabaseStore(db), MODERATE)
    guard.update(DAY, 10_000.0)
    guard.update(DAY + timedelta(hours=1), 10_500.0)
    view = guard.view(10_290.0)
    assert view["daily_pnl"] == pytest.approx(290.0) and view["drawdown"] == pytest.approx(
        10_290 / 10_500 - 1
    )


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.5, 1.5), min_size=1, max_size=60), st.sampled_from(sorted(PRESETS)))
def test_a_day_beyond_the_daily_limit_is_always_halted(
    tmp_path_factory: pytest.TempPathFactory, moves: list[float], tolerance: str
) -> None:
    policy = PRESETS[tolerance]
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('guard') / 'g.db'}")
    db.migrate()
    guard = TradingGuard(DatabaseStore(db), policy)
    equity, start = 10_000.0, None
    for minute, move in enumerate(moves):
        now = DAY + timedelta(minutes=37 * minute)
        equity *= move
        guard.update(now, equity)
        if guard.status.day != (start[0] if start else None):
            start = (guard.status.day, guard.status.day_start_equity)
        assert start is not None
        daily = equity / start[1] - 1
        if daily <= -policy.max_daily_loss:
            assert guard.state == "HALTED"
        if guard.state == "ACTIVE":
            assert daily > -policy.max_daily_loss * policy.reduce_at
    db.dispose()

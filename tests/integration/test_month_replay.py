"""The real month under replay, through the CLI: `bluefinai backtest --analyst claude` over the whole of
January 2022 (44,731 one-minute candles) recorded once against the fake Anthropic API (real HTTP) into
AI_CACHE_DATABASE_URL, then replayed from it with ANTHROPIC_BASE_URL at a dead address: no HTTP call, the
same trades, and a report with the follow baseline, the arena (AI_SHADOW_ANALYSTS=rules,follow), the LLM
cost (calls x price) and the PnL net of it. Both runs together take about 21 s of CPU (measured 45-50 s of
wall time on the shared 2-core machine at a load of 4-5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.config import PROJECT_ROOT
from tests.conftest import REAL_CANDLES, free_port
from tests.fakes.anthropic_api import FakeAnthropic

pytestmark = pytest.mark.integration
PRICE = (1200 * 3 + 150 * 15) / 1e6  # the fake's usage (1,200 in, 150 out) at Sonnet's $3 / $15 a million


@pytest.fixture
def api() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    yield fake
    fake.stop()


def backtest(tmp_path: Path, out: str, base_url: str, *args: str) -> tuple[dict[str, Any], float]:
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "BLUEFINAI_ENV_FILE": "",
        "DATA_DIR": str(tmp_path / "data"), "ANTHROPIC_API_KEY": "sk-ant-test-0000",
        "ANTHROPIC_BASE_URL": base_url, "AI_SHADOW_ANALYSTS": "rules,follow",
        "AI_CACHE_DATABASE_URL": f"sqlite:///{tmp_path / 'answers.db'}",
    }  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bluefinai.cli", "backtest", "--data", str(REAL_CANDLES), "--analyst", "claude",
         "--out", str(tmp_path / out), *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert "44731 candles" in done.stdout  # the whole month, not a slice of it
    return json.loads((tmp_path / out / "report.json").read_text()), took


def test_the_real_month_with_claude_recorded_once_then_replayed_without_a_call(
    tmp_path: Path, api: FakeAnthropic
) -> None:
    recorded, record_s = backtest(tmp_path, "record", api.url, "--allow-live-ai", "--set", "ai_cache=record")
    calls = len(api.requests)
    assert calls > 20  # Claude was asked about every signal of the month, over HTTP
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: a call could only fail
    replayed, replay_s = backtest(tmp_path, "replay", dead, "--set", "ai_cache=replay")
    print(f"whole month: record {record_s:.1f} s, replay {replay_s:.1f} s, {calls} Claude calls")
    assert len(api.requests) == calls  # replay made no HTTP call
    assert {"baseline", "arena", "llm_cost_usd", "pnl_net_of_llm_cost"} <= replayed.keys()
    # the same answers, so the same month: trades, equity and the shadow books
    for key in ("trade_count", "final_equity", "baseline", "arena", "llm_cost_usd"):
        assert replayed[key] == recorded[key], key
    assert replayed["baseline"]["analyst"] == "follow" and replayed["baseline"]["trades"] > 0
    rows = {r["analyst"]: r for r in replayed["arena"]}
    assert set(rows) == {"rules", "claude"} and rows["rules"]["trades"] > 0 and rows["claude"]["trades"] > 0
    assert rows["rules"]["llm_cost_usd"] == 0.0
    assert rows["claude"]["llm_cost_usd"] == pytest.approx(calls * PRICE, rel=1e-9)
    assert replayed["llm_cost_usd"] == pytest.approx(calls * PRICE, rel=1e-9)
    pnl = replayed["final_equity"] - replayed["starting_equity"]
    assert replayed["trade_count"] > 0 and pnl != 0
    # report.json rounds its figures to 7 decimals
    assert replayed["pnl_net_of_llm_cost"] == pytest.approx(pnl - calls * PRICE, abs=1e-6)

"""Benchmark: decisions per second of the rules analyst, and the overhead our code adds around a provider
call (Claude analyst against a fake Messages API that answers at once), p50/p99, next to the bare SDK
call measured in the same run.

    python bench/analysts.py [--decisions 2000] [--calls 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.analysis.audit import AuditLog  # noqa: E402
from agent.analysis.base import MarketContext  # noqa: E402
from agent.analysis.claude import ClaudeAnalyst  # noqa: E402
from agent.analysis.rules import RulesAnalyst  # noqa: E402
from agent.analysis.schema import tool_schema  # noqa: E402
from bench.machine import load  # noqa: E402
from shared.db import Database  # noqa: E402
from shared.marketdata.feeds import load_candle_csv  # noqa: E402
from shared.models import Position, Signal, SignalAction  # noqa: E402
from tests.fakes.anthropic_api import FakeAnthropic  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"


def percentiles(values: list[float]) -> str:
    ms = np.array(values) * 1000
    return f"p50 {statistics.median(ms):6.2f} ms  p99 {np.percentile(ms, 99):6.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    candles = load_candle_csv(REAL).set_index("timestamp")
    rules = RulesAnalyst()
    started = time.perf_counter()
    for index in range(args.decisions):
        window = candles.iloc[index * 20 : index * 20 + 300]
        context = MarketContext(
            "BTC-PERP", float(window["close"].iloc[-1]), window, Position("BTC-PERP", 0, 0)
        )
        rules.decide(Signal(f"b{index}", "bench", "BTC-PERP", SignalAction.BUY), context)
    elapsed = time.perf_counter() - started
    print(
        f"rules analyst               {args.decisions / elapsed:8.1f} decisions/s "
        f"(300-candle windows of the real month; {load()})"
    )

    fake = FakeAnthropic()
    fake.start()
    db = Database(f"sqlite:///{tempfile.mkdtemp(prefix='bench-analysts-')}/a.db")
    db.migrate()
    claude = ClaudeAnalyst("sk-ant-bench", AuditLog(db), base_url=fake.url, max_retries=0)
    window = candles.iloc[:300]
    context = MarketContext("BTC-PERP", float(window["close"].iloc[-1]), window, Position("BTC-PERP", 0, 0))
    ours, bare = [], []
    tools = [{"name": "trade_decision", "description": "d", "input_schema": tool_schema()}]
    for index in range(args.calls):
        started = time.perf_counter()
        claude.decide(Signal(f"c{index}", "bench", "BTC-PERP", SignalAction.BUY), context)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        claude._client.messages.create(
            model=claude.model,
            max_tokens=1024,
            tools=tools,
            tool_choice={"type": "tool", "name": "trade_decision"},
            messages=[{"role": "user", "content": "x"}],
        )
        bare.append(time.perf_counter() - started)
    fake.stop()
    overhead = [a - b for a, b in zip(ours, bare, strict=True)]
    print(f"claude decide() end to end  {percentiles(ours)}")
    print(f"bare SDK call (same server) {percentiles(bare)}")
    print(f"our overhead per call       {percentiles(overhead)}  (prompt, validation, audit write; {load()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

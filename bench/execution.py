"""Benchmark: signal committed -> order acknowledged and the position's protective stop and targets
placed, through the real engine (rules analyst, risk gate, execution, position manager, journal), on the
paper exchange and on the Bluefin adapter against the local fake gateway (Kelly off, so every signal trades).

Signals alternate buy/sell so every one trades (open, then flip). Prints p50/p99/max per exchange.

    python bench/execution.py [--orders 1000]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.analysis.rules import RulesAnalyst  # noqa: E402
from agent.engine import Engine  # noqa: E402
from agent.journal import Journal  # noqa: E402
from agent.risk.presets import PRESETS  # noqa: E402
from shared.db import Database, OrderRow, SignalRow  # noqa: E402
from shared.exchange.base import Exchange  # noqa: E402
from shared.exchange.bluefin import BluefinExchange  # noqa: E402
from shared.exchange.paper import PaperConfig, PaperExchange  # noqa: E402
from shared.marketdata.bluefin import bluefin_network  # noqa: E402
from shared.marketdata.feeds import ReplayFeed  # noqa: E402
from tests.fakes.bluefin_gateway import FakeBluefinGateway  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"


def run(exchange_name: str, exchange_factory: object, orders: int) -> list[float]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-exec-{exchange_name}-"))
    db = Database(f"sqlite:///{folder / 'bench.db'}")
    db.migrate()
    exchange: Exchange = exchange_factory(db)  # type: ignore[operator]
    feed = ReplayFeed(REAL, "BTC-PERP", start_index=300)
    engine = Engine(
        db=db, exchange=exchange, analyst=RulesAnalyst(), feeds=[feed], journal=Journal(None),
        policy=replace(PRESETS["moderate"], kelly_fraction=0), candle_interval_s=0.0,  # every signal trades
    )  # fmt: skip
    engine.prepare()
    latencies = []
    for index in range(orders):
        with db.session() as session:
            row = SignalRow(idempotency_key=f"bench-{index}", source="bench", symbol="BTC-PERP",
                            action="buy" if index % 2 == 0 else "sell", raw={})  # fmt: skip
            session.add(row)
            session.flush()
            signal_id = row.id
        started = time.perf_counter()  # the signal is committed
        engine.process_signal(signal_id)
        latencies.append(time.perf_counter() - started)  # the exchange's answer is applied to the order
        with db.session() as session:
            status = session.scalar(select_status(signal_id))
        if status != "FILLED":
            raise SystemExit(f"{exchange_name}: signal {signal_id} ended as {status}")
    return latencies


def select_status(signal_id: int):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    return select(OrderRow.status).where(OrderRow.signal_id == signal_id, OrderRow.role == "entry")


def report(name: str, latencies: list[float]) -> None:
    ms = np.array(latencies) * 1000
    print(
        f"{name:28s} orders {len(ms):5d}  p50 {statistics.median(ms):7.2f} ms  "
        f"p99 {np.percentile(ms, 99):7.2f} ms  max {ms.max():7.2f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    args = parser.parse_args()
    report("paper exchange", run("paper", lambda db: PaperExchange(db, PaperConfig()), args.orders))
    gateway = FakeBluefinGateway(cursor=301)
    gateway.start()
    exchanges: list[BluefinExchange] = []

    def bluefin(db: Database) -> BluefinExchange:
        exchange = BluefinExchange(bluefin_network(gateway.url), "0x" + secrets.token_hex(32), ("BTC-PERP",))
        exchange.start()
        exchanges.append(exchange)
        return exchange

    try:
        report("bluefin adapter (fake gw)", run("bluefin", bluefin, args.orders))
    finally:
        for exchange in exchanges:
            exchange.stop()
        gateway.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

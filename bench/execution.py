"""Benchmark: signal committed -> entry acknowledged, and -> the position's protective stop and targets
placed, through the real engine (rules analyst, risk gate, execution, position manager, journal), on the
paper exchange, on the Bluefin Pro adapter against the local fake Bluefin Pro (real HTTP and WebSockets:
signed orders, 202 answers, fills on the account stream) and on the legacy v2 adapter against the fake v2
gateway (Kelly off, so every signal trades).

Signals alternate buy/sell so every one trades (open, then flip). Prints p50/p99/max per exchange, and the
ratio of each adapter's p50 to the paper exchange's measured in the same run.

    python bench/execution.py [--orders 1000] [--profile paper-profile.txt]

``--profile FILE`` also writes pyinstrument's call tree of the paper exchange's run (where the order path
spends its time) to FILE.
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
from agent.engine.engine import Engine  # noqa: E402
from agent.journal.events import Journal  # noqa: E402
from agent.risk.presets import PRESETS  # noqa: E402
from bench.machine import load  # noqa: E402
from shared.bluefin_pro.network import pro_hosts  # noqa: E402
from shared.bluefin_pro.rest import ProClient  # noqa: E402
from shared.bluefin_pro.signing import SuiKey  # noqa: E402
from shared.db import Database, OrderRow, SignalRow  # noqa: E402
from shared.exchange.base import Exchange  # noqa: E402
from shared.exchange.bluefin import BluefinExchange  # noqa: E402
from shared.exchange.bluefin_pro import BluefinProExchange  # noqa: E402
from shared.exchange.paper import PaperConfig, PaperExchange  # noqa: E402
from shared.marketdata.bluefin import bluefin_network  # noqa: E402
from shared.marketdata.feeds import ReplayFeed  # noqa: E402
from shared.models import OrderRequest, OrderResult  # noqa: E402
from tests.fakes.bluefin_gateway import FakeBluefinGateway  # noqa: E402
from tests.fakes.bluefin_pro import FakeBluefinPro  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"


def run(exchange_name: str, exchange_factory: object, orders: int) -> tuple[list[float], list[float]]:
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
    acknowledged: dict[str, float] = {}
    place = exchange.place_order

    def timed(request: OrderRequest) -> OrderResult:
        result = place(request)
        acknowledged.setdefault(request.client_id, time.perf_counter())
        return result

    exchange.place_order = timed  # type: ignore[method-assign]
    latencies, entries = [], []
    for index in range(orders):
        with db.session() as session:
            row = SignalRow(idempotency_key=f"bench-{index}", source="bench", symbol="BTC-PERP",
                            action="buy" if index % 2 == 0 else "sell", raw={})  # fmt: skip
            session.add(row)
            session.flush()
            signal_id = row.id
        started = time.perf_counter()  # the signal is committed
        engine.process_signal(signal_id)
        latencies.append(time.perf_counter() - started)  # entry answered, applied, and protected
        with db.session() as session:
            status, client_id = session.execute(select_entry(signal_id)).one()
        if status != "FILLED":
            raise SystemExit(f"{exchange_name}: signal {signal_id} ended as {status}")
        entries.append(acknowledged[client_id] - started)
    return entries, latencies


def select_entry(signal_id: int):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    return select(OrderRow.status, OrderRow.client_id).where(
        OrderRow.signal_id == signal_id, OrderRow.role == "entry"
    )


def report(name: str, measured: tuple[list[float], list[float]], reference: float | None = None) -> float:
    entries, latencies = (np.array(m) * 1000 for m in measured)
    p50 = float(statistics.median(entries))
    ratio = f"  x{p50 / reference:5.1f} of paper" if reference else ""
    print(
        f"{name:30s} orders {len(entries):5d}  entry acknowledged p50 {p50:7.2f} ms  "
        f"p99 {np.percentile(entries, 99):7.2f} ms  |  with protection "
        f"p50 {statistics.median(latencies):7.2f} ms "
        f"p99 {np.percentile(latencies, 99):7.2f} ms  max {latencies.max():7.2f} ms{ratio}  ({load()})"
    )
    return p50


def pro_adapter(orders: int, reference: float) -> None:
    fake = FakeBluefinPro(symbols=("BTC-PERP",))
    fake.start()
    exchanges: list[BluefinProExchange] = []

    def pro(db: Database) -> BluefinProExchange:
        client = ProClient(pro_hosts(fake.url), SuiKey.from_seed(secrets.token_bytes(32)), timeout_s=5)
        exchange = BluefinProExchange(client, ("BTC-PERP",))
        exchange.start()
        deadline = time.monotonic() + 5
        while not exchange.stream_connected and time.monotonic() < deadline:
            time.sleep(0.05)
        exchange.drain_changed_orders()
        exchanges.append(exchange)
        return exchange

    try:
        report("bluefin pro adapter (fake)", run("pro", pro, orders), reference)
    finally:
        for exchange in exchanges:
            exchange.stop()
        fake.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--profile", type=Path, help="write the paper run's pyinstrument call tree here")
    args = parser.parse_args()

    def paper_run() -> tuple[list[float], list[float]]:
        return run("paper", lambda db: PaperExchange(db, PaperConfig()), args.orders)

    if args.profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        with profiler:
            paper_run()
        args.profile.write_text(profiler.output_text(unicode=True, show_all=False))
        print(f"profile of the paper run written to {args.profile} (its figures are slowed by the profiler)")
    paper = report("paper exchange", paper_run())
    pro_adapter(args.orders, paper)
    gateway = FakeBluefinGateway(cursor=301)
    gateway.start()
    exchanges: list[BluefinExchange] = []

    def bluefin(db: Database) -> BluefinExchange:
        exchange = BluefinExchange(bluefin_network(gateway.url), "0x" + secrets.token_hex(32), ("BTC-PERP",))
        exchange.start()
        exchanges.append(exchange)
        return exchange

    try:
        report("bluefin v2 adapter (fake gw)", run("bluefin", bluefin, args.orders), paper)
    finally:
        for exchange in exchanges:
            exchange.stop()
        gateway.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: TradingView alerts through nginx to a running local stack, while the agent trades them.

Two ways to send: flat out (``--alerts N`` with ``--concurrency C`` senders) or at a set rate (``--rate R``
alerts/s for ``--duration S`` seconds, open loop: each alert leaves at its scheduled time whatever the answers
before it took, as TradingView's would, and its latency counts from that time), after ``--warmup`` alerts
that open the connections and are left out of the latency figures, from one asyncio loop over
kept-alive connections (``bench/http_sender.py``), so the senders cost the stack's cores little.
Prints the load average, accepted alerts/s, the 202's p50/p99/max,
lost alerts (no answer, a 5xx, or slower than TradingView's 3 s cutoff) and, read from the database itself
(any number of alerts), the signals stored and processed, the decisions and the orders by role: every
approved decision must have made exactly one entry order, every unique alert one signal, every resend a
duplicate answer. ``--database postgresql`` runs the same on a fresh schema of the local PostgreSQL.

    python bench/webhook.py [--alerts 500] [--concurrency 1] [--resend-every 10]
    python bench/webhook.py --rate 200 --duration 10 [--database postgresql] [--profile DIR]

``--profile DIR`` attaches py-spy to every service for ``--duration`` seconds from the first alert and writes
each one's collapsed stacks and a summary of where its CPU went (``bench/profiles.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.http_sender import post_request, send_all
from bench.machine import group_cpu_s, load, own_cpu_s
from bench.profiles import Profilers
from bluefinai.nginx import find_nginx
from bluefinai.runner import start_stack
from shared.config import load_settings
from shared.db import Database, DecisionRow, OrderRow, SignalRow
from tests.postgres import fresh_schema

TOKEN = "bench-api-token-0123456789"
PASSPHRASE = "bench-passphrase-0123456789"
TRADINGVIEW_CUTOFF_S = 3.0  # TradingView gives up on a webhook that has not answered by then


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextmanager
def database_url(kind: str, folder: Path) -> Iterator[str]:
    """A fresh SQLite file, or a fresh schema of the local PostgreSQL dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    with fresh_schema("bench") as url:
        yield url


def alert_body(index: int) -> bytes:
    return json.dumps({"passphrase": PASSPHRASE, "id": f"bench-{index}", "symbol": "BTCUSDT.P",
                       "action": "buy" if index % 2 == 0 else "sell"}).encode()  # fmt: skip


def schedule(args: argparse.Namespace) -> list[tuple[float, int]]:
    """(when to send, seconds from the start; which alert) for every alert, resends included: the first
    ``--warmup`` alerts (indexes below it) warm the stack up at the same rate or concurrency."""
    total = args.warmup + (int(args.rate * args.duration) if args.rate else args.alerts)
    unique = [(i / args.rate if args.rate else 0.0, i) for i in range(total)]
    if not args.resend_every:
        return unique
    resends = [(at + 0.5 / (args.rate or 1e9), i) for at, i in unique if i % args.resend_every == 0]
    return sorted(unique + resends)


def count_records(url: str) -> dict[str, object]:
    db = Database(url)
    try:
        with db.session() as session:
            roles = Counter(
                dict(session.execute(select(OrderRow.role, func.count()).group_by(OrderRow.role)).all())
            )
            entries_filled = session.scalar(
                select(func.count()).where(OrderRow.role == "entry", OrderRow.status == "FILLED")
            )
            return {
                "signals": session.scalar(select(func.count()).select_from(SignalRow)),
                "processed": session.scalar(select(func.count(func.distinct(DecisionRow.signal_id)))),
                "decisions": session.scalar(select(func.count()).select_from(DecisionRow)),
                "approved": session.scalar(select(func.count()).where(DecisionRow.risk_approved.is_(True))),
                "roles": dict(roles),
                "entries_filled": entries_filled,
            }
    finally:
        db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=500, help="unique alerts, flat out (without --rate)")
    parser.add_argument("--concurrency", type=int, default=1, help="senders at once (with --rate: at most)")
    parser.add_argument("--rate", type=float, default=0.0, help="alerts per second, open loop")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of --rate")
    parser.add_argument("--warmup", type=int, default=200, help="alerts sent first, not in the figures")
    parser.add_argument("--resend-every", type=int, default=10, help="resend every Nth alert (0 = never)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--engine-nice", type=int, default=0, help="the agent's ENGINE_NICE (0-19)")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles of the services here")
    args = parser.parse_args()
    if args.alerts < 1 or args.rate < 0 or args.duration <= 0 or args.warmup < 0:
        parser.error("--alerts must be at least 1, --rate and --warmup not negative, --duration positive")
    if find_nginx() is None:
        print("nginx is not installed; run `make test` once (it installs nginx) or apt-get install nginx")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    with database_url(args.database, tmp) as url:
        return run(args, tmp, url)


def run(args: argparse.Namespace, tmp: Path, url: str) -> int:
    overrides = {
        "api_token": TOKEN, "webhook_passphrase": PASSPHRASE, "data_dir": tmp, "database_url": url,
        "agent_port": free_port(), "webhook_port": free_port(), "socket_port": free_port(),
        "nginx_port": free_port(), "replay_speed": 0.01, "log_level": "WARNING",
        "engine_nice": args.engine_nice,
    }  # fmt: skip
    settings = load_settings(**overrides)
    env = {**os.environ, "BLUEFINAI_ENV_FILE": ""} | {k.upper(): str(v) for k, v in overrides.items()}
    # nginx's per-sender limit (20 alerts/s) would answer most of a benchmark from one address itself
    stack = start_stack(
        settings,
        env,
        with_nginx=True,
        nginx_overrides={"WEBHOOK_RATE": "100000r/s", "WEBHOOK_BURST": "100000"},
    )
    try:
        plan = schedule(args)
        unique = len({index for _, index in plan})
        connections = max(args.concurrency, 64 if args.rate else 1)
        print(f"{len(plan)} alerts ({unique} unique, the first {args.warmup} a warm-up) to {args.database}, "
              f"{f'{args.rate:g}/s for {args.duration:g} s' if args.rate else 'flat out'}, "
              f"at most {connections} connections, ENGINE_NICE={args.engine_nice}; {load()}")  # fmt: skip
        groups = {name: os.getpgid(process.pid) for name, process in stack.processes.items()}
        requests = [(at, post_request("127.0.0.1", "/webhook", alert_body(index))) for at, index in plan]
        cpu_before: dict[str, float] = {}
        profilers = Profilers()

        def measure_start() -> None:
            cpu_before.update({name: group_cpu_s(group) for name, group in groups.items()})
            cpu_before["senders"] = own_cpu_s()
            if args.profile:
                services = {name: group for name, group in groups.items() if name != "nginx"}
                profilers.start(services, args.duration, args.profile)

        answers, elapsed = send_all(
            "127.0.0.1", settings.nginx_port, requests, connections, bool(args.rate), measure_start
        )
        started = time.perf_counter() - elapsed
        # the figures leave out the warm-up (the first connections opened, the services' first requests);
        # the records check below counts every alert
        measured = [a for (_, index), a in zip(plan, answers, strict=True) if index >= args.warmup]
        measured_s = elapsed - (args.warmup / args.rate if args.rate else 0.0)
        senders_cpu_s = own_cpu_s() - cpu_before["senders"]  # before the database is polled below
        for summary in profilers.finish():
            print(f"profile                   {summary}")
        accepted = [a.latency_s for a in measured if a.status == 202]
        duplicates = sum(1 for a in answers if a.status == 200)
        lost = [a for a in answers if a.status == 0 or a.status >= 500 or a.latency_s > TRADINGVIEW_CUTOFF_S]
        refused = sum(1 for a in answers if 400 <= a.status < 500)
        warm_up = [a for (_, index), a in zip(plan, answers, strict=True) if index < args.warmup]
        cold = [a.latency_s for a in warm_up if a.status == 202]
        # at a rate, the alerts after the warm-up over their own seconds; flat out, all of them (the
        # warm-up's time is not its own)
        rate = len(accepted) / measured_s if args.rate else sum(a.status == 202 for a in answers) / elapsed
        deadline = time.monotonic() + 300
        records = count_records(url)
        while records["processed"] != records["signals"] and time.monotonic() < deadline:
            time.sleep(0.5)
            records = count_records(url)
        drained = time.perf_counter() - started
        cpu_after = {name: group_cpu_s(group) for name, group in groups.items()}
        cpu_after["senders"] = cpu_before["senders"] + senders_cpu_s
        per_alert = {name: (cpu_after[name] - cpu_before[name]) * 1000 / unique for name in cpu_before}
        cpu_total = sum(per_alert.values())
        roles: dict[str, int] = records["roles"]  # type: ignore[assignment]
        print(f"sent in                   {elapsed:.2f} s; agent done after {drained:.2f} s; {load()}")
        print(f"accepted/s                {rate:.1f}")
        print(f"202 latency p50/p99/max   {statistics.median(accepted) * 1000:.1f} / "
              f"{percentile(accepted, 0.99) * 1000:.1f} / {max(accepted) * 1000:.1f} ms")  # fmt: skip
        if cold:
            cold_ms = f"{statistics.median(cold) * 1000:.1f} / {max(cold) * 1000:.1f}"
            print(f"warm-up 202 p50/max       {cold_ms} ms (not in the figures above)")
        print(f"lost (none, 5xx, > {TRADINGVIEW_CUTOFF_S:g} s)   {len(lost)} (warm-up included)")
        print(f"refused (4xx)             {refused}")
        print(f"duplicates answered 200   {duplicates} of {len(plan) - unique} resends")
        print(f"signals stored/processed  {records['signals']} / {records['processed']}")
        print(f"decisions (approved)      {records['decisions']} ({records['approved']})")
        print(f"orders by role            {dict(sorted(roles.items()))}")
        # where the CPU went per unique alert, from the first send until the agent had decided them all
        # (idle work such as the replayed feed included): the rate these costs allow on this machine's cores
        # is the intake's ceiling, whatever the code waits on
        print("CPU ms per alert          " + ", ".join(f"{n} {ms:.2f}" for n, ms in per_alert.items())
              + f"; total {cpu_total:.2f} -> at most {(os.cpu_count() or 1) * 1000 / cpu_total:.0f} alerts/s "
              f"on {os.cpu_count()} CPUs")  # fmt: skip
        # an approved decision sends one order: an entry (opening or flipping) or a close; the stop and the
        # take-profits placed to protect an entry, and exits of the position manager, are not decisions
        decided = roles.get("entry", 0) + roles.get("close", 0)
        ok = (
            not lost and not refused and duplicates == len(plan) - unique and records["signals"] == unique
            and records["processed"] == unique and decided == records["approved"]
            and records["entries_filled"] == roles.get("entry", 0)
        )  # fmt: skip
        print(f"check (no alert lost, one signal per unique alert, one filled order per approved decision): "
              f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
        return 0 if ok else 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())

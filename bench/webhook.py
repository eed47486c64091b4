"""Benchmark: N TradingView alerts through nginx to a running local stack.

Prints accepted alerts per second, p50/p99 latency of the 202, and the counts of signals stored and orders
made, which must equal the number of unique alerts sent (each resend is answered as a duplicate).
Alerts alternate buy/sell so that, sent in order, every one of them trades (open, then flip) on the paper
exchange. With --concurrency above 1 the arrival order is scrambled and two buys in a row are vetoed
("already long"), so the check is then: every approved decision has exactly one order.

    python bench/webhook.py [--alerts 500] [--concurrency 1] [--resend-every 10]
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bluefinai.nginx import find_nginx
from bluefinai.runner import start_stack
from shared.config import load_settings

TOKEN = "bench-api-token-0123456789"
PASSPHRASE = "bench-passphrase-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=500, help="unique alerts to send (at most 500)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--resend-every", type=int, default=10, help="resend every Nth alert (0 = never)")
    args = parser.parse_args()
    if not 1 <= args.alerts <= 500:
        parser.error("--alerts must be from 1 to 500 (the API lists at most 500 rows)")
    if find_nginx() is None:
        print("nginx is not installed; run `make test` once (it installs nginx) or apt-get install nginx")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    overrides = {
        "api_token": TOKEN, "webhook_passphrase": PASSPHRASE, "data_dir": tmp,
        "database_url": f"sqlite:///{tmp / 'bench.db'}", "agent_port": free_port(),
        "webhook_port": free_port(), "socket_port": free_port(), "nginx_port": free_port(),
        "replay_speed": 0.01, "log_level": "WARNING",
    }  # fmt: skip
    settings = load_settings(**overrides)
    env = {**os.environ, "BLUEFINAI_ENV_FILE": ""} | {k.upper(): str(v) for k, v in overrides.items()}
    # nginx's per-sender limit (20 alerts/s) would answer most of a benchmark from one address itself
    stack = start_stack(
        settings, env, with_nginx=True, nginx_overrides={"WEBHOOK_RATE": "10000r/s", "WEBHOOK_BURST": "10000"}
    )
    base = f"http://127.0.0.1:{settings.nginx_port}"
    session = requests.Session()

    def send(index: int) -> tuple[int, float]:
        body = {"passphrase": PASSPHRASE, "id": f"bench-{index}", "symbol": "BTCUSDT.P",
                "action": "buy" if index % 2 == 0 else "sell"}  # fmt: skip
        started = time.perf_counter()
        response = session.post(f"{base}/webhook", data=json.dumps(body), timeout=10)
        return response.status_code, time.perf_counter() - started

    try:
        sequence = list(range(args.alerts))
        if args.resend_every:
            sequence += list(range(0, args.alerts, args.resend_every))
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(send, sequence))
        elapsed = time.perf_counter() - started
        accepted = [latency for status, latency in results if status == 202]
        duplicates = sum(1 for status, _ in results if status == 200)
        errors = sum(1 for status, _ in results if status not in (200, 202))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        deadline = time.monotonic() + 120
        status: dict[str, int] = {}
        while time.monotonic() < deadline:
            status = session.get(f"{base}/api/status", headers=headers, timeout=10).json()["engine"]
            if status["signals_processed"] >= args.alerts:
                break
            time.sleep(0.5)
        signals = len(
            session.get(f"{base}/api/signals?limit=500", headers=headers, timeout=10).json()["signals"]
        )
        orders = session.get(f"{base}/api/orders?limit=500", headers=headers, timeout=10).json()["orders"]
        decisions = session.get(f"{base}/api/decisions?limit=500", headers=headers, timeout=10).json()[
            "decisions"
        ]
        approved = sum(1 for d in decisions if d["risk_approved"])
        latencies = [latency for _, latency in results]
        print(
            f"alerts sent               {len(sequence)} "
            f"({args.alerts} unique, {len(sequence) - args.alerts} resends)"
        )
        print(f"accepted/s                {len(accepted) / elapsed:.1f}")
        print(f"202 latency p50           {statistics.median(accepted) * 1000:.1f} ms")
        print(f"202 latency p99           {percentile(accepted, 0.99) * 1000:.1f} ms")
        print(f"any answer latency p99    {percentile(latencies, 0.99) * 1000:.1f} ms")
        print(f"duplicates answered 200   {duplicates}")
        print(f"errors                    {errors}")
        print(
            f"signals stored            {signals if args.alerts <= 500 else status.get('signals_processed')}"
        )
        print(f"signals processed         {status.get('signals_processed')}")
        print(f"decisions (approved)      {len(decisions)} ({approved})")
        print(f"orders made               {len(orders)}")
        filled = sum(1 for o in orders if o["status"] == "FILLED")
        expected = min(args.alerts, 500) if args.concurrency == 1 else approved
        ok = errors == 0 and duplicates == len(sequence) - args.alerts and filled == len(orders) == expected
        what = "unique alerts" if args.concurrency == 1 else "approved decisions"
        print(f"check (filled orders == {what} == {expected}, no errors): {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())

"""Run the fake alone, from the project root:
``python -m tests.fakes.bluefin_pro --port N [--candles-per-second 1] [--balance 10000]``.
Candle times are shifted to now; it runs until SIGINT or SIGTERM. Drive it from another process with the
``/_fake/`` endpoints (advance, price, misbehave, drop-streams, funding, fund, expire-tokens, knobs,
state)."""

from __future__ import annotations

import argparse
import signal
import threading

from tests.fakes.bluefin_pro.server import FakeBluefinPro


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.bluefin_pro", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--candles-per-second", type=float, default=0.0)
    parser.add_argument("--balance", type=float, default=10_000.0, help="starting balance of new accounts")
    parser.add_argument("--cursor", type=int, default=300, help="index of the open candle at start")
    args = parser.parse_args(argv)
    fake = FakeBluefinPro(
        cursor=args.cursor,
        starting_balance=args.balance,
        candles_per_second=args.candles_per_second,
        shift_to_now=True,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    url = fake.start(args.port)
    print(f"fake Bluefin Pro on {url}", flush=True)
    try:
        stop.wait()
    finally:
        fake.stop()


if __name__ == "__main__":
    main()

"""``bluefinai backtest``: arguments -> a backtest (or a sweep of them) -> reports and a terminal summary."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.backtest.report import terminal_table
from agent.backtest.run import BacktestRequest, run_backtest
from agent.backtest.sweep import parse_grid, run_sweep, sweep_table
from shared.config import load_settings
from shared.errors import ConfigError, FieldProblem, InvalidInput, Temporary
from shared.symbols import UnknownSymbol, normalise_symbol


def _files(args: argparse.Namespace, items: list[str], option: str) -> dict[str, Path]:
    """``[SYMBOL=]FILE`` items of ``option`` by market (no symbol: --symbol's)."""
    data: dict[str, Path] = {}
    for item in items:
        symbol, _, path = item.rpartition("=")
        try:
            market = normalise_symbol(symbol) if symbol else normalise_symbol(args.symbol)
        except UnknownSymbol as exc:
            raise InvalidInput([FieldProblem(option, str(exc))]) from None
        if not Path(path).exists():
            raise InvalidInput([FieldProblem(option, f"{path} does not exist")])
        data[market] = Path(path)
    return data


def _data(args: argparse.Namespace) -> dict[str, Path]:
    return _files(args, args.data, "--data")


def _download(args: argparse.Namespace) -> dict[str, Path]:
    """--download: the candles of --symbol from Bluefin into DATA_DIR/candles (resumed when present)."""
    from shared.marketdata.bluefin import BluefinMarketData, bluefin_network
    from shared.marketdata.download import download

    if args.since is None:
        raise InvalidInput([FieldProblem("--since", "--download needs --since")])
    settings = load_settings()
    symbol = normalise_symbol(args.symbol)
    target = settings.data_dir / "candles" / f"{symbol}-1m.parquet"
    hub = BluefinMarketData(bluefin_network(settings.bluefin_network), (symbol,), request_timeout_s=15)
    try:
        hub.start(with_socket=False)
        download(hub, symbol, "1m", args.since, args.until, target)
    finally:
        hub.stop()
    return {symbol: target}


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput([FieldProblem("--set", f"{item!r} must look like KEY=VALUE")])
        overrides[key.strip().lower()] = value.strip()
    flags = {
        "starting_equity": args.equity, "taker_fee": args.taker_fee, "maker_fee": args.maker_fee,
        "slippage_bps": args.slippage_bps, "ai_model_provider": args.analyst,
        "internal_signal_timeframe": args.timeframe, "signals_replay_file": args.signals,
    }  # fmt: skip
    overrides.update({k: v for k, v in flags.items() if v is not None})
    strategy = args.strategy or ("none" if args.signals else overrides.get("internal_signals", "ema_cross"))
    overrides["internal_signals"] = strategy
    return overrides


def default_out(symbol: str, sweep: bool) -> Path:
    """BACKTEST_DIR/<UTC time>-<symbol>[-sweep]: where a run goes without --out (``backtest list`` reads)."""
    settings = load_settings()
    assert settings.backtest_dir is not None  # derived from DATA_DIR when unset
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-{normalise_symbol(symbol)}" + ("-sweep" if sweep else "")
    folder, n = settings.backtest_dir / name, 1
    while folder.exists():
        n += 1
        folder = settings.backtest_dir / f"{name}-{n}"
    return folder


def request_from_args(args: argparse.Namespace) -> BacktestRequest:
    """The backtest the parsed arguments describe (``bluefinai optimize`` builds its trials this way, so a
    trial and the plain command line that reproduces it run the same request)."""
    data = _download(args) if args.download else _data(args)
    if not data:
        raise InvalidInput([FieldProblem("--data", "give a candle file (--data FILE) or --download")])
    return BacktestRequest(
        data=data, start=args.start, end=args.end, overrides=_overrides(args),
        funding_rate=args.funding_rate, allow_live_ai=args.allow_live_ai,
        funding=_files(args, getattr(args, "funding", []), "--funding"),
        mark=_files(args, getattr(args, "mark", []), "--mark"),
    )  # fmt: skip


def backtest_command(args: argparse.Namespace) -> int:
    try:
        if args.out is None:
            args.out = default_out(args.symbol, bool(args.sweep))
        request = request_from_args(args)
        if args.sweep:
            ranked, warning = run_sweep(request, parse_grid(args.sweep), args.out, args.rank_by, args.jobs)
            print(sweep_table(ranked, args.rank_by))
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
            print(f"wrote {args.out / 'sweep.json'} and one report per run in {args.out / 'runs'}")
            return 0
        result = run_backtest(request, args.out)
    except InvalidInput as exc:
        for problem in exc.problems:
            print(f"error: {problem.field}: {problem.message}", file=sys.stderr)
        return 2
    except (ValueError, Temporary) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ConfigError:
        raise
    print(terminal_table(result.metrics))
    print(f"{result.candles} candles, {result.signals} signals decided, {len(result.trades)} trades")
    assert result.files is not None
    print(f"report: {result.files.report_html}")
    return 0

"""The ``bluefinai`` command."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.config import (
    NOTIFY_EVENT_KINDS,
    PROJECT_ROOT,
    Settings,
    ensure_env_file,
    env_file_path,
    load_settings,
)
from shared.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bluefinai", description="BluefinAI Trader")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the whole platform locally (no Docker)")
    run.add_argument("--no-nginx", action="store_true", help="do not start nginx in front of the services")
    run.add_argument("--reload", action="store_true", help="restart services when the code changes")
    serve = commands.add_parser("serve", help="run one service under gunicorn (what the containers run)")
    serve.add_argument("service", choices=["agent", "webhook", "websocket"])
    serve.add_argument("--reload", action="store_true", help="restart the service when the code changes")
    data = commands.add_parser("data", help="candle files").add_subparsers(dest="data_command", required=True)
    importer = data.add_parser("import", help="validate and normalise a candle file into Parquet")
    importer.add_argument("file", type=Path)
    importer.add_argument("--out", type=Path, help="output .parquet (default: beside the input)")
    importer.add_argument("--strict", action="store_true", help="write nothing if any row is bad")
    downloader = data.add_parser("download", help="download candles from Bluefin into Parquet (resumes)")
    downloader.add_argument("--symbol", default="BTC-PERP")
    downloader.add_argument("--timeframe", default="1m", choices=["1m", "5m", "15m", "1h", "4h", "1d"])
    downloader.add_argument("--since", required=True, type=_utc_date, help="first candle, e.g. 2025-01-01")
    downloader.add_argument("--until", type=_utc_date, help="end (exclusive); default: now")
    downloader.add_argument(
        "--out", type=Path, required=True, help="the .parquet file (appended to if it exists)"
    )
    downloader.add_argument(
        "--price",
        choices=["last", "mark"],
        default="last",
        help="Bluefin Pro: last-trade or mark-price candles",
    )
    downloader.add_argument(
        "--funding", action="store_true", help="Bluefin Pro: the hourly funding history instead of candles"
    )
    markets = commands.add_parser("markets", help="market specs (tick, step, limits, margin, fees)")
    market_commands = markets.add_subparsers(dest="markets_command", required=True)
    market_commands.add_parser(
        "refresh", help="read them from Bluefin Pro into DATA_DIR/bluefin-markets.json"
    )
    market_commands.add_parser("show", help="print the specs in use and where they come from")
    _backtest_parser(commands.add_parser("backtest", help="run the engine over history (reports in --out)"))
    commands.add_parser("migrate", help="the same as `db upgrade`")
    db = commands.add_parser("db", help="the database: schema, backups").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser(
        "upgrade", help="bring the schema to this version's (alembic; once, before the services start)"
    )
    db.add_parser("current", help="print the schema revision and the one this version needs")
    backup = db.add_parser("backup", help="an online copy of the database into BACKUP_DIR (or --out folder)")
    backup.add_argument("--out", type=Path, help="folder for the backup (default BACKUP_DIR)")
    restore = db.add_parser("restore", help="replace the database with a backup (stop the services first)")
    restore.add_argument("file", type=Path)
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    notify = commands.add_parser("notify", help="send one notification now (NOTIFY_URLS)")
    notify.add_argument("--event", required=True, choices=NOTIFY_EVENT_KINDS)
    notify.add_argument("message")
    config = commands.add_parser("config", help="validate the configuration and print it (secrets redacted)")
    config.add_argument(
        "--check", action="store_true", help="also try the database, the replay file and (real mode) Bluefin"
    )
    from bluefinai.strategy_command import add_strategy_parser

    add_strategy_parser(commands)
    from bluefinai.optimize_parser import add_optimize_parser

    add_optimize_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env_file = env_file_path()
    if (
        args.command == "run"
        and env_file is not None
        and ensure_env_file(PROJECT_ROOT / ".env.example", env_file)
    ):
        print(f"created {env_file} from .env.example with a fresh WEBHOOK_PASSPHRASE and API_TOKEN")
    if args.command == "strategy":
        from bluefinai.strategy_command import strategy_command

        return strategy_command(args)
    if args.command == "data" and args.data_command == "import":
        return data_import(args.file, args.out, args.strict)
    try:
        settings = load_settings()
        if args.command == "run":
            from bluefinai.runner import run

            return run(settings, env_file, use_nginx=not args.no_nginx, reload=args.reload)
        if args.command == "data":
            return data_download(settings, args)
        if args.command == "markets":
            return markets_command(settings, args.markets_command)
        if args.command == "backtest" and args.backtest_command:
            from bluefinai.backtest_reports import past_runs_command

            return past_runs_command(settings, args)
        if args.command == "backtest":
            from bluefinai.backtest_command import backtest_command

            return backtest_command(args)
        if args.command == "optimize":
            from bluefinai.optimize_command import optimize_command

            return optimize_command(args)
        if args.command == "serve":
            from bluefinai.services import serve

            return serve(settings, args.service, args.reload)
        if args.command == "notify":
            from shared.notify import notify_command

            return notify_command(settings, args.event, args.message)
        if args.command == "migrate":
            return db_command(settings, "upgrade", args)
        if args.command == "db":
            return db_command(settings, args.db_command, args)
        if args.command == "config" and args.check:
            return config_check()
        for key, value in settings.public_view().items():
            print(f"{key}={value}")
        return 0
    except ConfigError as exc:
        print("invalid configuration:", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def db_command(settings: Settings, command: str, args: argparse.Namespace) -> int:
    from agent.journal.upkeep import backup_database, restore_database
    from shared.db import Database
    from shared.errors import InvalidInput
    from shared.schema import current_revision, head_revision, upgrade

    db = Database(settings.database_url)
    now = datetime.now(UTC)
    try:
        if command == "upgrade":
            before, after = upgrade(db)
            print(
                f"schema at {after} (already)"
                if before == after
                else f"schema upgraded: {before or 'empty'} -> {after}"
            )
        elif command == "current":
            current = current_revision(db) or "none (empty database)"
            print(f"schema at {current}; this version needs {head_revision()}")
        elif command == "backup":
            folder = args.out or settings.backup_dir or settings.data_dir / "backups"
            print(f"backup written: {backup_database(db, folder, settings.backup_keep, now)}")
        elif command == "restore":
            if (
                not args.yes
                and input(f"replace the database with {args.file}? stop the services first [y/N] ")
                .strip()
                .lower()
                != "y"
            ):
                print("not restored")
                return 1
            aside = restore_database(db, args.file, now)
            print(
                f"restored from {args.file}"
                + (f"; the previous database is kept as {aside}" if aside else "")
            )
    except InvalidInput as exc:
        for problem in exc.problems:
            print(f"{problem.field}: {problem.message}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0


def config_check() -> int:
    """Validate (every problem at once), then try what the services need; 0 only when all is well."""
    from bluefinai.config_check import run_checks

    settings = load_settings()
    print("ok      configuration values")
    results = run_checks(settings)
    for result in results:
        print(result.line())
    return 2 if any(r.failed for r in results) else 0


def _backtest_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", action="append", default=[], metavar="[SYMBOL=]FILE",
        help="candle file (CSV, Parquet, Feather, JSON, freqtrade, Binance klines); repeat per market",
    )  # fmt: skip
    parser.add_argument("--symbol", default="BTC-PERP", help="market of a --data given without SYMBOL=")
    parser.add_argument(
        "--download", action="store_true", help="download --since..--until from Bluefin first"
    )
    parser.add_argument("--since", type=_utc_date, help="with --download: the first candle")
    parser.add_argument("--until", type=_utc_date, help="with --download: the end (exclusive)")
    parser.add_argument("--start", type=_utc_date, help="first traded candle (default: after 300 of warm-up)")
    parser.add_argument("--end", type=_utc_date, help="end of the run, exclusive (default: end of the data)")
    parser.add_argument("--equity", type=float, help="starting equity in USD (STARTING_EQUITY)")
    parser.add_argument("--taker-fee", type=float, help="TAKER_FEE, fraction of notional")
    parser.add_argument("--maker-fee", type=float, help="MAKER_FEE, fraction of notional")
    parser.add_argument("--slippage-bps", type=float, help="SLIPPAGE_BPS of market orders")
    parser.add_argument("--funding-rate", type=float, default=0.0, help="funding per FUNDING_INTERVAL_HOURS")
    parser.add_argument(
        "--funding", action="append", default=[], metavar="[SYMBOL=]FILE",
        help="funding-rate series (freqtrade funding_rate file, `data download --funding`, or time,rate), "
        "each rate settled at its own time; repeat per market",
    )  # fmt: skip
    parser.add_argument(
        "--mark", action="append", default=[], metavar="[SYMBOL=]FILE",
        help="mark-price candles: stops, liquidations and funding on the mark (default: the last price)",
    )  # fmt: skip
    parser.add_argument(
        "--analyst",
        choices=["rules", "follow", "claude", "perplexity", "openai-compatible"],
        help="AI_MODEL_PROVIDER",
    )
    parser.add_argument("--allow-live-ai", action="store_true", help="let an LLM analyst call its API")
    parser.add_argument(
        "--signals", type=Path, help="historical alerts (CSV/JSON: time, symbol, action, ...)"
    )
    parser.add_argument(
        "--strategy", choices=["none", "ema_cross", "sma_cross"],
        help="the platform's own signals (default: ema_cross, or none when --signals is given)",
    )  # fmt: skip
    parser.add_argument("--timeframe", choices=["1m", "5m", "15m", "1h", "4h", "1d"], help="of --strategy")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any setting of .env")
    parser.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2", help="a grid to run")
    parser.add_argument("--rank-by", default="sharpe", help="metric that ranks a sweep (default sharpe)")
    parser.add_argument("--jobs", type=int, default=0, help="parallel processes of a sweep (default: CPUs)")
    parser.add_argument(
        "--out",
        type=Path,
        help="report folder (default: BACKTEST_DIR/<UTC time>-<symbol>, for `backtest list`)",
    )
    past = parser.add_subparsers(dest="backtest_command", metavar="{list,show,compare}")
    listing = past.add_parser("list", help="past runs in BACKTEST_DIR, newest first")
    listing.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    show = past.add_parser("show", help="one past run's metrics and where its report is")
    show.add_argument("run", help="folder name in BACKTEST_DIR, or a path to a run's folder")
    compare = past.add_parser("compare", help="two past runs' metrics side by side")
    compare.add_argument("first")
    compare.add_argument("second")


def _utc_date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date like 2025-01-01 or 2025-01-01T12:00"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def data_download(settings: Settings, args: argparse.Namespace) -> int:
    """Candles (or, on Bluefin Pro, funding history) for one market, paged, resumed, into Parquet."""
    from shared.errors import Temporary
    from shared.marketdata.download import DownloadReport, download, download_funding

    if args.until is not None and args.until <= args.since:
        print("error: --until must be after --since", file=sys.stderr)
        return 2
    if settings.bluefin_api == "v2" and (args.funding or args.price != "last"):
        print("error: --funding and --price mark need BLUEFIN_API=pro", file=sys.stderr)
        return 2
    try:
        report: DownloadReport
        if settings.bluefin_api == "pro":
            report = _download_pro(settings, args, download, download_funding)
        else:
            report = _download_v2(settings, args, download)
    except Temporary as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    resumed = f", resumed after {report.resumed_from.isoformat()}" if report.resumed_from else ""
    what = "funding rates" if args.funding else "candles"
    print(f"wrote {report.total} {what} to {report.path} ({report.fetched} new{resumed})")
    return 0


def _download_pro(settings: Settings, args: argparse.Namespace, candles: Any, funding: Any) -> Any:
    from functools import partial

    from shared.bluefin_pro.network import pro_hosts
    from shared.bluefin_pro.rest import ProClient
    from shared.marketdata.bluefin_pro import BluefinProMarketData

    hub = BluefinProMarketData(
        ProClient(pro_hosts(settings.bluefin_network), timeout_s=15), (args.symbol,), False
    )
    try:
        if args.funding:
            return funding(hub, args.symbol, args.since, args.until, args.out)
        price = "Mark" if args.price == "mark" else "Last"

        class Pages:
            candles = partial(hub.candles, price=price)

        return candles(Pages(), args.symbol, args.timeframe, args.since, args.until, args.out)
    finally:
        hub.stop()


def _download_v2(settings: Settings, args: argparse.Namespace, candles: Any) -> Any:
    from shared.marketdata.bluefin import BluefinMarketData, bluefin_network

    hub = BluefinMarketData(bluefin_network(settings.bluefin_network), (args.symbol,), request_timeout_s=15)
    try:
        hub.start(with_socket=False)
        return candles(hub, args.symbol, args.timeframe, args.since, args.until, args.out)
    finally:
        hub.stop()


def markets_command(settings: Settings, command: str) -> int:
    """``refresh``: Bluefin Pro's /v1/exchange/info into DATA_DIR/bluefin-markets.json (the paper exchange
    and backtests use it instead of the shipped defaults); ``show``: the specs in use."""
    from shared.bluefin_pro.network import pro_hosts
    from shared.bluefin_pro.rest import ProClient
    from shared.errors import Rejected, Temporary
    from shared.exchange.markets import REFRESHED_FILE_NAME, MarketSpecs, load_market_specs

    if command == "show":
        specs = load_market_specs(settings.data_dir)
        print(f"source: {specs.source}")
        for spec in specs.markets.values():
            print(
                f"{spec.symbol}: tick {spec.tick_size} step {spec.step_size} min {spec.min_quantity} "
                f"max leverage {spec.max_leverage:g} IMR {spec.initial_margin_ratio:g} "
                f"MMR {spec.maintenance_margin_ratio:g} maker {spec.maker_fee:g} taker {spec.taker_fee:g}"
            )
        return 0
    client = ProClient(pro_hosts(settings.bluefin_network), timeout_s=15)
    try:
        info = client.get("/v1/exchange/info")
    except (Temporary, Rejected) as exc:
        print(f"error: Bluefin Pro did not answer ({exc}); the specs in use are unchanged", file=sys.stderr)
        return 1
    finally:
        client.close()
    specs = MarketSpecs.from_exchange_info(info, settings.bluefin_network)
    target = settings.data_dir / REFRESHED_FILE_NAME
    specs.write(target, settings.bluefin_network)
    print(f"wrote {len(specs.markets)} markets to {target} ({specs.source})")
    return 0


def data_import(source: Path, out: Path | None, strict: bool) -> int:
    """Report every bad row with its line number; write the good rows, normalised, as Parquet."""
    from shared.marketdata.files import (
        CandleFileError,
        clean,
        find_problems,
        read_candles_with_lines,
        write_parquet,
    )

    try:
        frame, first_line = read_candles_with_lines(source)
    except (CandleFileError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = find_problems(frame, first_line)
    for problem in problems:
        print(f"{source}:{problem.line}: {problem.message}", file=sys.stderr)
    if problems and strict:
        print(f"{len(problems)} bad rows; nothing written (--strict)", file=sys.stderr)
        return 1
    target = out or source.with_suffix(".parquet")
    if target.resolve() == source.resolve():
        target = source.with_name(source.stem + ".clean.parquet")
    good = clean(frame, problems, first_line)
    write_parquet(good, target)
    print(f"wrote {len(good)} candles to {target} ({len(frame) - len(good)} bad rows left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

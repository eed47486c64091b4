"""``bluefinai data download``: page through Bluefin's candle endpoint (or its funding history) into a
Parquet file.

Resumes where an existing file stops, retries temporary failures with backoff, shows a progress bar in a
terminal (silent otherwise), and never stores the still-open candle. Works on any source with Bluefin's
paging: Bluefin Pro (last or mark candles, funding history) or the legacy v2 gateway (last candles).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

import pandas as pd
from tqdm import tqdm

from shared.errors import Temporary
from shared.logs import log_event
from shared.marketdata.candles import TIMEFRAMES
from shared.marketdata.feeds import CandleSource
from shared.marketdata.files import COLUMNS, read_candles, write_parquet
from shared.marketdata.funding import FundingRate
from shared.models import Candle

logger = logging.getLogger(__name__)
RETRIES = 5
MAX_CANDLES_PER_CALL = 1000  # both APIs answer at most this many rows a page
T = TypeVar("T")


class FundingPages(Protocol):
    def funding_history(
        self, symbol: str, start_ms: int | None, end_ms: int | None, limit: int = ..., page: int = ...
    ) -> list[FundingRate]: ...


@dataclass(frozen=True)
class DownloadReport:
    path: Path
    fetched: int
    total: int
    resumed_from: datetime | None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _retried(fetch: Callable[[], T]) -> T:
    for attempt in range(RETRIES):
        try:
            return fetch()
        except Temporary as exc:
            delay = min(2**attempt, 30)
            log_event(logger, "download_retry", logging.WARNING, error=str(exc), retry_in_s=delay)
            time.sleep(delay)
    raise Temporary(f"Bluefin failed {RETRIES} times in a row; run the same command again to resume")


def _page(hub: CandleSource, symbol: str, timeframe: str, start_ms: int, end_ms: int | None) -> list[Candle]:
    return _retried(
        lambda: hub.candles(
            symbol, MAX_CANDLES_PER_CALL, start_ms=start_ms, end_ms=end_ms, interval=timeframe
        )
    )


def download(
    hub: CandleSource,
    symbol: str,
    timeframe: str,
    since: datetime,
    until: datetime | None,
    out: Path,
    progress: bool | None = None,
) -> DownloadReport:
    step = timedelta(seconds=TIMEFRAMES[timeframe])
    existing = read_candles(out) if out.exists() else None
    start, resumed = since, None
    if existing is not None and len(existing):
        resumed = existing["timestamp"].max().to_pydatetime()
        start = max(since, resumed + step)
    end = until or datetime.now(UTC)
    expected = max(int((end - start) / step), 0)
    show = sys.stderr.isatty() if progress is None else progress
    rows: list[Candle] = []
    cursor = _ms(start)
    with tqdm(total=expected, unit="candle", desc=f"{symbol} {timeframe}", disable=not show) as bar:
        while cursor < _ms(end):
            batch = _page(hub, symbol, timeframe, cursor, _ms(until) if until else None)
            batch = [c for c in batch if c.open_time >= datetime.fromtimestamp(cursor / 1000, UTC)]
            if until is not None:
                batch = [c for c in batch if c.open_time + step <= until]
            if not batch:
                break
            last_page = len(batch) < MAX_CANDLES_PER_CALL
            if last_page and until is None:
                batch = batch[:-1]  # the newest candle is still open
            rows.extend(batch)
            bar.update(len(batch))
            if last_page:
                break
            cursor = _ms(batch[-1].open_time + step)
    fresh = pd.DataFrame(
        [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in rows],
        columns=["timestamp", *COLUMNS],
    )
    if not fresh.empty:
        fresh["timestamp"] = pd.to_datetime(fresh["timestamp"], utc=True)
    parts = [frame for frame in (existing, fresh) if frame is not None and not frame.empty]
    combined = (
        pd.concat(parts)
        .drop_duplicates("timestamp", keep="last")
        .sort_values("timestamp")
        .reset_index(drop=True)
        if parts
        else fresh
    )
    write_parquet(combined, out)
    log_event(logger, "download_done", symbol=symbol, fetched=len(rows), total=len(combined), path=str(out))
    return DownloadReport(out, len(rows), len(combined), resumed)


def download_funding(
    hub: FundingPages,
    symbol: str,
    since: datetime,
    until: datetime | None,
    out: Path,
    progress: bool | None = None,
) -> DownloadReport:
    """Bluefin Pro's hourly funding rates (``time``, ``rate``) into ``out``, resuming where it stops."""
    existing = pd.read_parquet(out) if out.exists() else None
    start, resumed = since, None
    if existing is not None and len(existing):
        resumed = pd.Timestamp(existing["time"].max()).to_pydatetime()
        start = max(since, resumed + timedelta(seconds=1))
    end = until or datetime.now(UTC)
    show = sys.stderr.isatty() if progress is None else progress
    rows: list[FundingRate] = []
    cursor = start
    with tqdm(total=max(int((end - start) / timedelta(hours=1)), 0), unit="rate", desc=f"{symbol} funding",
              disable=not show) as bar:  # fmt: skip
        while cursor < end:
            begin = cursor
            batch = _retried(
                partial(hub.funding_history, symbol, _ms(begin), _ms(end), MAX_CANDLES_PER_CALL, 1)
            )
            batch = [r for r in batch if begin <= r.time < end]
            if not batch:
                break
            rows.extend(batch)
            bar.update(len(batch))
            cursor = batch[-1].time + timedelta(seconds=1)
    fresh = pd.DataFrame({"time": [r.time for r in rows], "rate": [r.rate for r in rows]})
    if not fresh.empty:
        fresh["time"] = pd.to_datetime(fresh["time"], utc=True)
    parts = [frame for frame in (existing, fresh) if frame is not None and not frame.empty]
    combined = (
        pd.concat(parts).drop_duplicates("time", keep="last").sort_values("time").reset_index(drop=True)
        if parts
        else fresh
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    combined.to_parquet(out, index=False)
    log_event(logger, "funding_download_done", symbol=symbol, fetched=len(rows), total=len(combined))
    return DownloadReport(out, len(rows), len(combined), resumed)

"""``bluefinai data download``: page through Bluefin's candle endpoint into a Parquet file.

Resumes where an existing file stops, retries temporary failures with backoff, shows a progress bar in a
terminal (silent otherwise), and never stores the still-open candle.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from shared.errors import Temporary
from shared.logs import log_event
from shared.marketdata.bluefin import MAX_CANDLES_PER_CALL, BluefinMarketData
from shared.marketdata.candles import TIMEFRAMES
from shared.marketdata.files import COLUMNS, read_candles, write_parquet
from shared.models import Candle

logger = logging.getLogger(__name__)
RETRIES = 5


@dataclass(frozen=True)
class DownloadReport:
    path: Path
    fetched: int
    total: int
    resumed_from: datetime | None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _page(
    hub: BluefinMarketData, symbol: str, timeframe: str, start_ms: int, end_ms: int | None
) -> list[Candle]:
    for attempt in range(RETRIES):
        try:
            return hub.candles(
                symbol, MAX_CANDLES_PER_CALL, start_ms=start_ms, end_ms=end_ms, interval=timeframe
            )
        except Temporary as exc:
            delay = min(2**attempt, 30)
            log_event(logger, "download_retry", logging.WARNING, error=str(exc), retry_in_s=delay)
            time.sleep(delay)
    raise Temporary(f"Bluefin candles failed {RETRIES} times in a row; run the same command again to resume")


def download(
    hub: BluefinMarketData,
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

"""Candle files in and out: CSV (ours, freqtrade, Binance klines), Parquet, Feather and JSON.

``read_candles`` returns one normalised frame (``timestamp`` UTC, ``open high low close volume`` as
floats, in file order); ``find_problems`` reports every bad row with the line (or row) it came from;
``write_parquet`` writes the normalised form. Nothing here repairs data silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shared.errors import InvalidInput

COLUMNS = ("open", "high", "low", "close", "volume")
TIME_ALIASES = ("timestamp", "date", "time", "open_time", "datetime")
BINANCE_KLINE_WIDTH = 12


class CandleFileError(InvalidInput):
    """The file cannot be read as candles at all (unknown format, missing columns)."""

    FIELD = "file"


@dataclass(frozen=True)
class RowProblem:
    line: int  # 1-based line in a CSV (header = line 1), else 1-based row number
    message: str


def _to_utc(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        unit = "ms" if values.abs().max() > 1e11 else "s"
        return pd.to_datetime(values, unit=unit, utc=True)
    return pd.to_datetime(values, utc=True, format="mixed")


def _normalise(frame: pd.DataFrame, source: Path) -> pd.DataFrame:
    frame = frame.rename(columns={c: str(c).strip().lower() for c in frame.columns})
    time_column = next((c for c in TIME_ALIASES if c in frame.columns), None)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if time_column is None or missing:
        raise CandleFileError(
            f"{source}: needs a time column ({'/'.join(TIME_ALIASES)}) and {', '.join(missing or COLUMNS)}"
        )
    out = pd.DataFrame({"timestamp": _to_utc(frame[time_column])})
    for column in COLUMNS:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return out.reset_index(drop=True)


def _read_csv(path: Path) -> tuple[pd.DataFrame, int]:
    first = path.open().readline()
    if first and first[0].isdigit():  # headerless: Binance kline export
        raw = pd.read_csv(path, header=None)
        if raw.shape[1] < 6:
            raise CandleFileError(f"{path}: a headerless CSV needs open_time, open, high, low, close, volume")
        raw = raw.iloc[:, :6].set_axis(["open_time", *COLUMNS], axis=1)
        return raw, 1
    return pd.read_csv(path), 2


def _read_json(path: Path) -> pd.DataFrame:
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "data" in data:
        data = data["data"]
    if not isinstance(data, list):
        raise CandleFileError(f"{path}: JSON must be a list of candles")
    if data and isinstance(data[0], list):  # freqtrade: [[ms, open, high, low, close, volume], ...]
        return pd.DataFrame([row[:6] for row in data], columns=["timestamp", *COLUMNS])
    return pd.DataFrame(data)


def read_candles_with_lines(path: Path) -> tuple[pd.DataFrame, int]:
    """The normalised frame and the line number of its first row (2 for CSV with a header, else 1)."""
    suffix = path.suffix.lower()
    first_line = 1
    if suffix in (".csv", ".txt"):
        raw, first_line = _read_csv(path)
    elif suffix == ".parquet":
        raw = pd.read_parquet(path)
    elif suffix == ".feather":
        raw = pd.read_feather(path)
    elif suffix == ".json":
        raw = _read_json(path)
    else:
        raise CandleFileError(f"{path}: unknown format {suffix!r} (csv, parquet, feather or json)")
    if "timestamp" not in raw.columns and isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.reset_index(names="timestamp")
    return _normalise(raw, path), first_line


def read_candles(path: Path) -> pd.DataFrame:
    return read_candles_with_lines(path)[0]


def find_problems(frame: pd.DataFrame, first_line: int = 2) -> list[RowProblem]:
    """Every bad row: missing values, high < low, open/close outside the range, negative volume,
    duplicate timestamps, time going backwards."""
    problems: list[RowProblem] = []
    lines = np.arange(len(frame)) + first_line
    o, h, low, c, v = (frame[col].to_numpy() for col in COLUMNS)
    checks = [
        (frame[list(COLUMNS)].isna().any(axis=1).to_numpy(), "missing or non-numeric value"),
        (h < low, "high < low"),
        ((h < np.maximum(o, c)) | (low > np.minimum(o, c)), "open/close outside high-low"),
        (v < 0, "negative volume"),
        (frame["timestamp"].duplicated().to_numpy(), "duplicate timestamp"),
        ((frame["timestamp"].diff() < pd.Timedelta(0)).to_numpy(), "time goes backwards"),
    ]
    for mask, message in checks:
        problems.extend(RowProblem(int(line), message) for line in lines[mask])
    return sorted(problems, key=lambda p: p.line)


def clean(frame: pd.DataFrame, problems: list[RowProblem], first_line: int = 2) -> pd.DataFrame:
    """The rows with no problem, sorted by time (what an import writes)."""
    bad = {p.line - first_line for p in problems}
    keep = [i for i in range(len(frame)) if i not in bad]
    return frame.iloc[keep].sort_values("timestamp").reset_index(drop=True)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[["timestamp", *COLUMNS]].to_parquet(path, index=False)

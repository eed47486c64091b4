from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bluefinai.cli import main
from shared.marketdata.feeds import ReplayFeed
from shared.marketdata.files import CandleFileError, find_problems, read_candles, read_candles_with_lines
from tests.conftest import REAL_CANDLES


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return read_candles(REAL_CANDLES).iloc[:200].reset_index(drop=True)


def write_all_formats(sample: pd.DataFrame, folder: Path) -> dict[str, Path]:
    ms = (sample["timestamp"].astype("int64") // 1000).astype("int64")  # us -> ms
    paths = {
        "csv": folder / "ours.csv",
        "parquet": folder / "c.parquet",
        "feather": folder / "c.feather",
        "freqtrade_json": folder / "freqtrade.json",
        "records_json": folder / "records.json",
        "binance_csv": folder / "klines.csv",
    }
    sample.assign(timestamp=sample["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S.%f")).to_csv(
        paths["csv"], index=False
    )
    sample.rename(columns={"timestamp": "date"}).to_parquet(paths["parquet"])
    sample.rename(columns={"timestamp": "date"}).to_feather(paths["feather"])
    rows = [
        [int(t), o, h, lo, c, v]
        for t, o, h, lo, c, v in zip(
            ms, *(sample[k] for k in ("open", "high", "low", "close", "volume")), strict=True
        )
    ]
    paths["freqtrade_json"].write_text(json.dumps(rows))
    paths["records_json"].write_text(
        json.dumps(
            [
                {"timestamp": r[0], "open": r[1], "high": r[2], "low": r[3], "close": r[4], "volume": r[5]}
                for r in rows
            ]
        )
    )
    klines = pd.DataFrame([[*r, r[0] + 59_999, 0, 0, 0, 0, 0] for r in rows])
    klines.to_csv(paths["binance_csv"], header=False, index=False)
    return paths


def test_every_format_reads_to_the_same_frame(sample: pd.DataFrame, tmp_path: Path) -> None:
    for name, path in write_all_formats(sample, tmp_path).items():
        frame = read_candles(path)
        assert list(frame.columns) == ["timestamp", "open", "high", "low", "close", "volume"], name
        assert (frame["timestamp"] == sample["timestamp"]).all(), name
        pd.testing.assert_frame_equal(
            frame.drop(columns="timestamp"), sample.drop(columns="timestamp"), obj=name
        )
        feed = ReplayFeed(path, "BTC-PERP", start_index=10)
        assert feed.next_candle().close == sample["close"].iloc[10]


def test_bad_rows_are_reported_with_their_csv_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2022-01-01 00:00:00,10,11,9,10.5,1\n"  # line 2 ok
        "2022-01-01 00:01:00,10,9,11,10,1\n"  # line 3 high < low (and open outside)
        "2022-01-01 00:02:00,10,11,9,10,-5\n"  # line 4 negative volume
        "2022-01-01 00:02:00,10,11,9,10,1\n"  # line 5 duplicate
        "2022-01-01 00:01:30,10,11,9,10,1\n"  # line 6 backwards
        "2022-01-01 00:04:00,10,11,9,abc,1\n"  # line 7 not a number
    )
    frame, first_line = read_candles_with_lines(path)
    found = {(p.line, p.message) for p in find_problems(frame, first_line)}
    assert (3, "high < low") in found and (4, "negative volume") in found
    assert (5, "duplicate timestamp") in found and (6, "time goes backwards") in found
    assert (7, "missing or non-numeric value") in found
    assert not any(line == 2 for line, _ in found)
    with pytest.raises(ValueError, match="line 3"):
        ReplayFeed(path, "BTC-PERP")


def test_import_command_reports_and_writes_clean_parquet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n2022-01-01 00:00:00,10,11,9,10,1\n2022-01-01 00:01:00,10,9,11,10,1\n"
    )
    assert main(["data", "import", str(path), "--strict"]) == 1
    assert not (tmp_path / "bad.parquet").exists()
    assert main(["data", "import", str(path)]) == 0
    output = capsys.readouterr()
    assert f"{path}:3: high < low" in output.err and "wrote 1 candles" in output.out
    assert len(read_candles(tmp_path / "bad.parquet")) == 1


def test_unknown_formats_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "candles.xlsx"
    path.write_text("x")
    with pytest.raises(CandleFileError, match="unknown format"):
        read_candles(path)
    assert main(["data", "import", str(path)]) == 2

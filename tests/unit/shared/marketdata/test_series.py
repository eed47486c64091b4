"""Funding-rate and mark-price files, and the interval of a candle file (issue 15)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.marketdata.feeds import load_candle_csv
from shared.marketdata.files import CandleFileError
from shared.marketdata.interval import detect_interval_s, interval_name
from shared.marketdata.series import read_funding, read_mark
from tests.conftest import REAL_CANDLES

T0 = pd.Timestamp("2022-01-01 00:00", tz="UTC")
S0 = int(T0.timestamp())


def seconds(times: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(
        (times - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1), dtype=np.int64
    )


def test_freqtrade_funding_feather_uses_open_as_the_rate(tmp_path: Path) -> None:
    # freqtrade's *-funding_rate.feather: date, open (= the rate), high, low, close, volume; every 8 h
    frame = pd.DataFrame(
        {"date": [T0, T0 + pd.Timedelta(hours=8), T0 + pd.Timedelta(hours=16)],
         "open": [0.0001, -0.00219, 0.00058], "high": 0.0, "low": 0.0, "close": 0.0, "volume": 0.0}
    )  # fmt: skip
    path = tmp_path / "XRP_USDT_USDT-8h-funding_rate.feather"
    frame.to_feather(path)
    series = read_funding(path, "XRP-PERP")
    assert series.times.tolist() == [S0, S0 + 28_800, S0 + 57_600]
    assert series.rates.tolist() == [0.0001, -0.00219, 0.00058]
    assert (
        series.next_index(S0) == 1
        and series.rate_at(S0 + 30_000) == -0.00219
        and series.rate_at(S0 - 1) is None
    )


def test_bluefin_funding_download_is_read_as_written(tmp_path: Path) -> None:
    # what `bluefinai data download --funding` writes: time (UTC), rate; hourly; unsorted on purpose
    frame = pd.DataFrame({"time": [T0 + pd.Timedelta(hours=1), T0], "rate": [0.00002, -0.00001]})
    path = tmp_path / "btc-funding.parquet"
    frame.to_parquet(path)
    series = read_funding(path, "BTC-PERP")
    assert series.times.tolist() == [S0, S0 + 3_600] and series.rates.tolist() == [-0.00001, 0.00002]


def test_a_funding_file_without_rates_or_with_duplicates_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,price\n2022-01-01T00:00:00Z,1\n")
    with pytest.raises(CandleFileError, match="rate column"):
        read_funding(bad, "BTC-PERP")
    twice = tmp_path / "twice.csv"
    twice.write_text("time,rate\n2022-01-01T00:00:00Z,0.1\n2022-01-01T00:00:00Z,0.2\n")
    with pytest.raises(CandleFileError, match="duplicate"):
        read_funding(twice, "BTC-PERP")


def test_mark_candles_are_looked_up_by_their_close(tmp_path: Path) -> None:
    path = tmp_path / "mark.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2022-01-01 00:00:00,100,101,99,100.5,0\n2022-01-01 00:01:00,100.5,102,100,101,0\n"
        "2022-01-01 00:03:00,101,103,100.5,102,0\n"
    )
    mark = read_mark(path, "BTC-PERP")
    # 1m candles (the modal step; one minute missing): the 00:01 candle closes at 00:02
    assert mark.at_close(S0 + 120) == (100.5, 102.0, 100.0, 101.0) and mark.at_close(S0 + 180) is None
    aligned = mark.aligned(np.array([S0 + 60, S0 + 180, S0 + 240]))
    assert (
        aligned[0].tolist() == [101.0, 99.0]
        and np.isnan(aligned[1]).all()
        and aligned[2].tolist() == [103, 100.5]
    )


def test_the_interval_is_the_modal_step_of_the_real_month() -> None:
    real = load_candle_csv(REAL_CANDLES)
    stamps = seconds(pd.DatetimeIndex(real["timestamp"]))
    assert detect_interval_s(stamps) == 60
    # minutes missing (every 7th dropped): the smallest step and the modal one are still 60 s, the mean not
    holed = np.delete(stamps, np.arange(0, len(stamps), 7))
    assert np.diff(holed).mean() > 60 and detect_interval_s(holed) == 60
    assert detect_interval_s(stamps) == 60
    five = real.set_index("timestamp").resample("5min").agg({"open": "first", "close": "last"}).dropna()
    assert detect_interval_s(seconds(pd.DatetimeIndex(five.index))) == 300
    assert interval_name(300) == "5m" and interval_name(90) == "90s"

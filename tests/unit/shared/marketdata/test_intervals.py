"""Candle files of any interval (issue 15): a 5m or 1h file is replayed at its own interval, every timeframe
above it is built exactly as from the 1m file, a timeframe below it does not exist, odd files are refused
with a clear message, and a looping replay never goes back in time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.marketdata.candles import TimeframeAggregator, timeframes_above
from shared.marketdata.feeds import ReplayFeed, SyntheticFeed, load_candle_csv
from shared.marketdata.prepared import PreparedMarketState
from shared.marketdata.series import MarkSeries
from shared.marketdata.snapshot import MarketState
from shared.models import Candle
from tests.conftest import REAL_CANDLES
from tests.unit.shared.marketdata.test_prepared import same

OHLCV = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
ROWS = 6_000  # from 2021-12-31 23:01 to 2022-01-05 03:00


def resample(real: pd.DataFrame, rule: str) -> pd.DataFrame:
    return real.set_index("timestamp").resample(rule).agg(OHLCV).dropna().reset_index()


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    frame = load_candle_csv(REAL_CANDLES).iloc[:ROWS]
    return frame[frame["timestamp"] >= pd.Timestamp("2022-01-01", tz="UTC")].reset_index(drop=True)


@pytest.fixture(scope="module")
def files(real: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("intervals")
    paths = {}
    for name, frame in (("1m", real), ("5m", resample(real, "5min")), ("1h", resample(real, "1h"))):
        paths[name] = folder / f"btc-{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def fold(feed: ReplayFeed, state: MarketState, until: datetime | None = None) -> dict[str, list[Candle]]:
    """The candles of the file (those opening before ``until``) through ``state``: the closed candles of
    each timeframe."""
    closed: dict[str, list[Candle]] = {tf: [] for tf in state.timeframes}
    for candle in feed.candles(0, len(feed.ohlcv)):
        if until is not None and candle.open_time >= until:
            break
        for built in state.add_candle(candle):
            closed[built.candle.timeframe].append(built.candle)
    return closed


def test_a_5m_file_is_replayed_as_5m_candles(files: dict[str, Path], real: pd.DataFrame) -> None:
    feed = ReplayFeed(files["5m"], "BTC-PERP", start_index=0)
    assert feed.interval_s == 300 and feed.timeframe == "5m"
    assert (feed.close_stamps - feed.open_stamps == 300).all()
    first = feed.next_candle()
    # by hand: the first 5m candle is the 1m rows 00:00 .. 00:04 of the real file
    rows = real.iloc[:5]
    assert first.timeframe == "5m" and first.open_time == datetime(2022, 1, 1, tzinfo=UTC)
    assert (first.open, first.high, first.low, first.close) == (
        rows["open"].iloc[0],
        rows["high"].max(),
        rows["low"].min(),
        rows["close"].iloc[-1],
    )
    assert first.volume == pytest.approx(rows["volume"].sum())
    assert feed.market_state().timeframes == ("5m", "15m", "1h", "4h", "1d")
    assert ReplayFeed(files["1h"], "BTC-PERP").market_state().timeframes == ("1h", "4h", "1d")


@pytest.mark.parametrize("coarse", ["5m", "1h"])
def test_every_timeframe_above_the_file_is_the_one_the_1m_file_builds(
    files: dict[str, Path], coarse: str
) -> None:
    minute_feed = ReplayFeed(files["1m"], "BTC-PERP")
    coarse_feed = ReplayFeed(files[coarse], "BTC-PERP")
    from_minutes = fold(minute_feed, MarketState("BTC-PERP", "replay"))
    state = MarketState("BTC-PERP", "replay", coarse_feed.interval_s)
    from_coarse = fold(coarse_feed, state)
    for timeframe in state.timeframes:
        if timeframe == "1d":
            continue  # the 1m file has no closed day before its first full one: compared below
        assert len(from_coarse[timeframe]) > 20, timeframe
        # the 1m file ends inside a bucket that the coarse file holds as closed: at most that one more
        assert len(from_coarse[timeframe]) - len(from_minutes[timeframe]) in (0, 1), timeframe
        for a, b in zip(from_minutes[timeframe], from_coarse[timeframe], strict=False):
            assert (a.open_time, a.timeframe) == (b.open_time, b.timeframe)
            assert (a.open, a.high, a.low, a.close) == (b.open, b.high, b.low, b.close)
            assert a.volume == pytest.approx(b.volume, rel=1e-12)
    assert [c.open_time.day for c in from_coarse["1d"]] == [1, 2, 3, 4]
    # the indicators rest on the same candles, so they are the same (up to any hour of the file)
    noon = datetime(2022, 1, 3, 12, tzinfo=UTC)
    minute_state, coarse_state = MarketState("BTC-PERP", "replay"), MarketState("BTC-PERP", "replay", 300)
    fold(minute_feed, minute_state, noon)
    fold(ReplayFeed(files["5m"], "BTC-PERP"), coarse_state, noon)
    for timeframe in ("15m", "1h", "4h"):
        same(
            minute_state.indicators(timeframe), coarse_state.indicators(timeframe), f"{timeframe} indicators"
        )
    # below the file's interval there is nothing, never a mislabelled candle
    assert "1m" not in state.snapshot().timeframes and state.indicator("1m", "atr") != state.indicator(
        "1m", "atr"
    )  # NaN
    assert state.snapshot().base is not None and state.snapshot().base.timeframe == coarse


def test_the_prepared_state_equals_the_incremental_one_on_a_5m_file(files: dict[str, Path]) -> None:
    feed = ReplayFeed(files["5m"], "BTC-PERP")
    prepared = feed.market_state()
    assert isinstance(prepared, PreparedMarketState)
    incremental = MarketState("BTC-PERP", "replay", 300)
    for index, candle in enumerate(feed.candles(0, len(feed.ohlcv))):
        a, b = incremental.add_candle(candle), prepared.add_candle(candle)
        assert [x.minutes for x in a] == [y.minutes for y in b]
        for x, y in zip(a, b, strict=True):
            same(vars(x.candle), vars(y.candle), f"candle {index}")
        if index % 97 == 0:
            same(incremental.snapshot().as_dict(), prepared.snapshot().as_dict(), f"candle {index}")
    # a 1h candle closes with its last 5m candle: 00:55 closes 00:00, at 01:00 on the market clock
    assert prepared.close_time_of_row("1h", 0) == datetime(2022, 1, 1, 1, tzinfo=UTC)
    assert prepared.next_close("5m", 3) == 3


def test_the_aggregator_refuses_what_its_base_cannot_build() -> None:
    with pytest.raises(ValueError, match="1m cannot be built from 5m candles"):
        TimeframeAggregator(["1m", "15m"], base_s=300)
    aggregator = TimeframeAggregator(base_s=300)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="expected a 5m candle, got 1m"):
        aggregator.add(Candle("BTC-PERP", start, 1, 1, 1, 1, 1))
    assert timeframes_above(900) == ("15m", "1h", "4h", "1d")
    with pytest.raises(ValueError, match="no timeframe of 90 s"):
        timeframes_above(90)


def write(path: Path, times: pd.DatetimeIndex) -> Path:
    prices = np.linspace(100, 110, len(times))
    pd.DataFrame(
        {
            "timestamp": times,
            "open": prices,
            "high": prices + 1,
            "low": prices - 1,
            "close": prices,
            "volume": 1.0,
        }
    ).to_csv(path, index=False)
    return path


def test_an_interval_no_timeframe_has_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "90s.csv", pd.date_range("2022-01-01", periods=50, freq="90s", tz="UTC"))
    with pytest.raises(ValueError, match=r"candles every 90s .*a replay takes candles of 1m, 5m, 15m, 1h"):
        ReplayFeed(path, "BTC-PERP")


def test_candles_off_their_boundaries_are_refused(tmp_path: Path) -> None:
    times = pd.date_range("2022-01-01 00:02", periods=50, freq="5min", tz="UTC")  # 00:02, 00:07 ...
    with pytest.raises(ValueError, match=r"2022-01-01 00:02:00\+00:00 does not open on a 5m boundary"):
        ReplayFeed(write(tmp_path / "shifted.csv", times), "BTC-PERP")


def test_mark_candles_fold_into_the_price_candles_interval() -> None:
    # 1m marks closing 00:01 .. 00:10: by hand, two 5m marks
    close = np.arange(1, 11, dtype=np.int64) * 60
    ohlc = np.array([[10 + i, 12 + i, 9 + i, 11 + i] for i in range(10)], dtype=float)
    five = MarkSeries("BTC-PERP", close, ohlc).resampled(300)
    assert five.interval_s == 300 and five.close_stamps.tolist() == [300, 600]
    assert five.ohlc.tolist() == [[10, 16, 9, 15], [15, 21, 14, 20]]
    assert five.at_close(300) == (10, 16, 9, 15) and five.at_close(60) is None
    with pytest.raises(ValueError, match="every 300 s cannot make 60 s candles"):
        five.resampled(60)
    # a missing minute leaves its bucket with fewer marks, never an invented one
    holed = MarkSeries("BTC-PERP", np.delete(close, 2), np.delete(ohlc, 2, axis=0)).resampled(300)
    assert holed.ohlc.tolist()[0] == [10, 16, 9, 15]


def test_a_looping_replay_moves_on_by_whole_days_and_never_goes_back(tmp_path: Path) -> None:
    times = pd.date_range("2022-01-01", periods=30, freq="1h", tz="UTC")  # 30 hours: a pass is 2 days
    feed = ReplayFeed(write(tmp_path / "loop.csv", times), "BTC-PERP", start_index=0)
    seen = [feed.next_candle() for _ in range(70)]
    opens = [c.open_time for c in seen]
    assert all(b > a for a, b in itertools.pairwise(opens))
    assert feed.wrapped == 2 and feed.loop_shift_s == 2 * 86_400
    assert seen[30].open_time == datetime(2022, 1, 3, tzinfo=UTC) and seen[30].close == seen[0].close
    assert seen[60].open_time == datetime(2022, 1, 5, tzinfo=UTC)
    # the market state of a later pass takes that pass's times
    state = feed.market_state()
    state.add_candle(feed.next_candle())
    assert state.time == datetime(2022, 1, 5, 10, tzinfo=UTC)
    # a restart that had booked up to the second pass goes on there
    again = ReplayFeed(tmp_path / "loop.csv", "BTC-PERP", start_index=5)
    again.resume_after(datetime(2022, 1, 3, 7, 30, tzinfo=UTC))
    # the first candle that closes after the booked time: 07:00 .. 08:00 of the second pass
    assert again.wrapped == 1 and again.next_candle().open_time == datetime(2022, 1, 3, 7, tzinfo=UTC)


def test_synthetic_candles_beside_a_coarser_file_take_its_interval() -> None:
    feed = SyntheticFeed("ETH-PERP", interval_s=300)
    a, b = feed.next_candle(), feed.next_candle()
    assert a.timeframe == b.timeframe == "5m" and b.open_time - a.open_time == timedelta(minutes=5)
    assert SyntheticFeed("ETH-PERP").next_candle().timeframe == "1m"


def test_settings_naming_a_timeframe_below_the_file_are_refused(
    files: dict[str, Path], make_settings: Any
) -> None:
    from agent.wiring import build_feeds
    from shared.errors import ConfigError

    settings = make_settings(
        market_data_source="replay", replay_file=str(files["1h"]), risk_atr_timeframe="15m",
        internal_signals="ema_cross", internal_signal_timeframe="5m",
    )  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        build_feeds(settings)
    assert refused.value.problems == [
        "RISK_ATR_TIMEFRAME=15m: the candles are 1h, so 15m candles cannot be built from them; choose a "
        "timeframe of at least 1h that it divides, or give finer data",
        "INTERNAL_SIGNAL_TIMEFRAME=5m: the candles are 1h, so 5m candles cannot be built from them; choose a "
        "timeframe of at least 1h that it divides, or give finer data",
    ]
    fine = make_settings(
        market_data_source="replay", replay_file=str(files["1h"]), risk_atr_timeframe="1h",
        internal_signals="ema_cross", internal_signal_timeframe="4h", symbols="BTC-PERP,ETH-PERP",
    )  # fmt: skip
    feeds = build_feeds(fine)
    assert [f.interval_s for f in feeds] == [3600, 3600]  # the synthetic second market follows the file

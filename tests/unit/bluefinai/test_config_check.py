"""`bluefinai config --check`: what the services need at start, tried, one line each."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bluefinai.cli import main
from bluefinai.config_check import SKIPPED, check_bluefin, check_database, check_replay_file
from tests.conftest import free_port
from tests.fakes.bluefin_pro import FakeBluefinPro


@pytest.fixture
def fake() -> Iterator[FakeBluefinPro]:
    server = FakeBluefinPro(symbols=("BTC-PERP",))
    server.start()
    yield server
    server.stop()


def real(make_settings: Any, network: str) -> Any:
    key = "0x" + secrets.token_hex(32)
    return make_settings(trading_mode="real", bluefin_private_key=key, bluefin_network=network,
                         market_data_source="bluefin", bluefin_timeout_s=2)  # fmt: skip


def test_bluefin_is_tried_with_the_key_in_real_mode(make_settings: Any, fake: FakeBluefinPro) -> None:
    assert check_bluefin(real(make_settings, fake.url)) == ""
    assert fake.logins >= 1  # the key really logged in
    unreachable = check_bluefin(real(make_settings, f"http://127.0.0.1:{free_port()}"))
    assert unreachable.startswith("BLUEFIN_PRIVATE_KEY / BLUEFIN_NETWORK: Bluefin (http://127.0.0.1:")
    assert check_bluefin(make_settings()) == SKIPPED


def test_the_database_and_its_schema(make_settings: Any, tmp_path: Path) -> None:
    assert check_database(make_settings()) == ""
    empty = make_settings(database_url=f"sqlite:///{tmp_path / 'other' / 'empty.db'}")
    (tmp_path / "other" / "empty.db").unlink()
    assert "run `bluefinai db upgrade`" in check_database(empty)


def test_the_replay_file_is_read(make_settings: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("not,a,candle,file\n1,2\n")
    problem = check_replay_file(make_settings(market_data_source="replay", replay_file=broken))
    assert problem.startswith(f"REPLAY_FILE: unreadable candles in {broken}")


def test_the_command_exits_2_naming_each_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'never-upgraded.db'}")
    assert main(["config", "--check"]) == 2
    out = capsys.readouterr().out
    assert "FAILED  DATABASE_URL: the database schema is empty" in out
    assert main(["db", "upgrade"]) == 0
    assert main(["config", "--check"]) == 0
    assert "ok      database reachable and its schema current" in capsys.readouterr().out

"""``bluefinai config --check``: beyond validating the values, try what the services will need at start, so
``serve`` never ends in a traceback for a problem that could have been named here.

Each check answers one line: ``ok <what>`` or ``FAILED <VARIABLE>: <why>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from shared.bluefin_pro.network import pro_hosts
from shared.bluefin_pro.rest import ProClient
from shared.bluefin_pro.signing import SuiKey
from shared.config import Settings
from shared.db import Database
from shared.errors import BluefinAIError, ConfigError
from shared.marketdata.files import CandleFileError, read_candles
from shared.schema import require_current

SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    name: str
    problem: str  # "" = passed, SKIPPED = not needed by this configuration

    def line(self) -> str:
        if self.problem == SKIPPED:
            return f"-       {self.name}: not needed here"
        return f"ok      {self.name}" if not self.problem else f"FAILED  {self.problem}"

    @property
    def failed(self) -> bool:
        return self.problem not in ("", SKIPPED)


def check_database(settings: Settings) -> str:
    db = Database(settings.database_url)
    try:
        require_current(db)
    except ConfigError as exc:
        return exc.problems[0]
    finally:
        db.dispose()
    return ""


def check_replay_file(settings: Settings) -> str:
    if settings.market_data_source not in ("replay", "auto") or settings.trading_mode == "real":
        return SKIPPED
    if not settings.replay_file.exists():
        if settings.market_data_source == "auto":
            return SKIPPED  # auto without the default file: synthetic prices, as the start-up log says
        return f"REPLAY_FILE: not found: {settings.replay_file}"
    try:
        read_candles(settings.replay_file)
    except (CandleFileError, OSError, ValueError) as exc:
        return f"REPLAY_FILE: unreadable candles in {settings.replay_file}: {str(exc)[:300]}"
    return ""


def check_bluefin(settings: Settings) -> str:
    """Real mode on Bluefin Pro: the exchange answers, the key logs in and its account can be read."""
    if settings.trading_mode != "real" or settings.bluefin_api != "pro":
        return SKIPPED
    key = SuiKey.parse(settings.secret("bluefin_private_key"))
    hosts = pro_hosts(settings.bluefin_network)
    client = ProClient(hosts, key, timeout_s=settings.bluefin_timeout_s, read_attempts=1)
    try:
        client.get("/v1/exchange/info")
        client.get("/api/v1/account", {"accountAddress": key.address}, auth=True)
    except (BluefinAIError, httpx.HTTPError) as exc:
        where = f"Bluefin ({settings.bluefin_network}), account {key.address}"
        return f"BLUEFIN_PRIVATE_KEY / BLUEFIN_NETWORK: {where} refused or did not answer: {str(exc)[:300]}"
    finally:
        client.close()
    return ""


CHECKS: tuple[tuple[str, Callable[[Settings], str]], ...] = (
    ("database reachable and its schema current", check_database),
    ("replay file readable", check_replay_file),
    ("Bluefin answers and the key logs in", check_bluefin),
)


def run_checks(settings: Settings) -> list[CheckResult]:
    return [CheckResult(name, check(settings)) for name, check in CHECKS]

"""All configuration, from the environment and ``.env`` (environment wins).

``load_settings()`` is the only way services read configuration. Invalid values raise ``ConfigError``
with one line per problem, naming the variable. Secrets are ``SecretStr`` and never printed:
``Settings.public_view()`` is what APIs and logs may show.
"""

from __future__ import annotations

import contextvars
import ipaddress
import math
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.bluefin_pro.signing import BadKey, SuiKey
from shared.errors import ConfigError
from shared.symbols import UnknownSymbol, normalise_symbol

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REPLAY_FILE = PROJECT_ROOT.parent / "shared" / "data" / "btc-perp-2022-01_1m.csv"
ENV_FILE_VARIABLE = "BLUEFINAI_ENV_FILE"
SECRET_FIELDS = (
    "ai_api_key",
    "bluefin_api_key",
    "bluefin_api_secret",
    "bluefin_private_key",
    "anthropic_api_key",
    "perplexity_api_key",
    "webhook_passphrase",
    "api_token",
    "notify_urls",
)
REDACTED = "***"
SERVICES = ("agent", "webhook", "websocket")
# The secrets each service is given (per-service env files, docker compose): only the agent holds the
# exchange key and the AI keys; the internet-facing webhook and dashboard get what they use and no more.
SERVICE_SECRETS: dict[str, tuple[str, ...]] = {
    "agent": SECRET_FIELDS,
    "webhook": ("webhook_passphrase", "api_token", "notify_urls"),
    "websocket": ("api_token", "notify_urls"),
}
# the analysts AI_SHADOW_ANALYSTS may name (agent.analysis.factory builds each)
SHADOW_ANALYSTS = ("claude", "perplexity", "openai-compatible", "rules", "follow")

NOTIFY_EVENT_KINDS = (
    "fill", "stop", "target", "lost", "liquidation", "external", "kill_switch", "breaker",
    "ai_degraded", "engine_error", "error_rate", "service_down", "daily_report",
)  # fmt: skip
# Set while a stand-in (wrong values replaced by defaults) is built to find the cross-field problems too.
_STAND_IN: contextvars.ContextVar[bool] = contextvars.ContextVar("settings_stand_in", default=False)
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def env_file_path() -> Path | None:
    """The ``.env`` to read: $BLUEFINAI_ENV_FILE (empty = none), else ``<project>/.env``."""
    configured = os.environ.get(ENV_FILE_VARIABLE)
    if configured is not None:
        return Path(configured) if configured else None
    return PROJECT_ROOT / ".env"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", env_ignore_empty=True)

    trading_mode: Literal["simulation", "real"] = "simulation"
    bluefin_api_key: SecretStr | None = None
    bluefin_api_secret: SecretStr | None = None
    bluefin_private_key: SecretStr | None = None
    # pro: Bluefin Pro, the API Bluefin runs today; v2: the legacy gateway (bluefin-v2-client), delisted
    bluefin_api: Literal["pro", "v2"] = "pro"
    bluefin_network: str = "SUI_PROD"
    bluefin_margin: Literal["isolated", "cross"] = "isolated"
    bluefin_taker_expiry_s: float = Field(60.0, ge=5, le=3600)
    bluefin_order_expiry_days: float = Field(30.0, ge=2, le=365)  # protective orders renew a day before
    bluefin_timeout_s: float = Field(10.0, gt=0, le=120)

    ai_model_provider: Literal["rules", "follow", "claude", "perplexity", "openai-compatible"] = "rules"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    ai_model: str = ""
    ai_base_url: str = "http://127.0.0.1:11434/v1"
    ai_api_key: SecretStr | None = None
    perplexity_base_url: str = "https://api.perplexity.ai"
    ai_timeout_s: float = Field(20.0, gt=0, le=300)
    ai_max_retries: int = Field(2, ge=0, le=10)
    ai_fallback: Literal["rules", "hold"] = "rules"
    ai_cache: Literal["off", "record", "replay"] = "off"
    # where AI_CACHE keeps its answers: another database (a backtest's journal lives in memory, so a
    # recorded run is replayed from this file); empty = the journal's DATABASE_URL
    ai_cache_database_url: str = Field("", repr=False)
    ai_research_provider: Literal["none", "perplexity"] = "none"
    ai_daily_budget_usd: float = Field(5.0, ge=0)
    ai_breaker_failures: int = Field(3, ge=1, le=100)
    ai_breaker_cooldown_s: float = Field(120.0, gt=0)
    perplexity_api_key: SecretStr | None = None
    # the arena: analysts that decide every signal in their own shadow book (paper, never an order)
    ai_shadow_analysts: Annotated[tuple[str, ...], NoDecode] = ()

    # Risk: RISK_TOLERANCE picks a preset (agent/risk/presets.py); each value below overrides its preset.
    risk_tolerance: Literal["conservative", "moderate", "aggressive"] = "moderate"
    max_position_size: float | None = Field(None, gt=0, le=1)
    risk_per_trade: float | None = Field(None, gt=0, le=0.1)
    kelly_fraction: float | None = Field(None, ge=0, le=1)
    kelly_prior_trades: int | None = Field(None, ge=0, le=10_000)
    kelly_min_trades: int | None = Field(None, ge=0, le=10_000)
    max_leverage: float | None = Field(None, ge=1, le=50)
    max_total_exposure: float | None = Field(None, gt=0, le=20)
    max_correlated_exposure: float | None = Field(None, gt=0, le=20)
    max_open_positions: int | None = Field(None, ge=1, le=100)
    min_confidence: float | None = Field(None, ge=0, le=1)
    min_reward_risk: float | None = Field(None, ge=0, le=20)
    min_liquidation_atr: float | None = Field(None, ge=0, le=100)
    max_daily_loss: float | None = Field(None, gt=0, le=1)
    max_drawdown: float | None = Field(None, gt=0, le=1)
    reduce_at: float | None = Field(None, gt=0, le=1)
    stop_atr_multiple: float | None = Field(None, ge=0, le=50)
    risk_atr_timeframe: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = "15m"
    # Position management (presets too; see agent/risk/presets.py)
    trailing_stop: str | None = None
    trailing_activation_r: float | None = Field(None, ge=0, le=50)
    partial_take_profits: str | None = None
    stagnant_exit_hours: float | None = Field(None, ge=0, le=10_000)
    stagnant_max_r: float | None = Field(None, ge=0, le=10)
    funding_exit_daily: float | None = Field(None, ge=0, le=1)
    exit_on_reversal: bool = True
    level_break_exit: bool = True
    review_exits: bool = True
    # AI position reviews (agent/engine/review_triggers.py): every AI_REVIEW_MINUTES per position (0 = no
    # timer) and on events; the funding spike event fires above this |rate| per interval (0 = never)
    ai_review_minutes: int = Field(60, ge=0, le=10_080)
    review_funding_rate: float = Field(0.0005, ge=0, le=0.1)
    default_leverage: float = Field(3.0, ge=1, le=20)
    # The platform's own signals: none | ema_cross | sma_cross, on closed candles of one timeframe
    internal_signals: Literal["none", "ema_cross", "sma_cross"] = "none"
    internal_signal_timeframe: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = "15m"
    signals_replay_file: Path | None = None
    # Your own strategies (agent/strategies/api.py): path/to/file.py:ClassName, a built-in name
    # (ema_cross, sma_cross, rsi_divergence, sr_break_volume, bb_squeeze) or an installed entry point
    strategies: Annotated[tuple[str, ...], NoDecode] = ()
    # their parameters without code: name.param=value,... (e.g. rsi_divergence.lookback=30); the rest
    # keep their defaults; checked against each strategy's declared params when the strategies load
    strategy_params: Annotated[tuple[str, ...], NoDecode] = ()
    daily_reports: bool = True
    starting_equity: float = Field(10_000.0, gt=0)
    # the paper exchange's fees and maintenance margin ratio: unset = each market's own (its Bluefin spec)
    taker_fee: float | None = Field(None, ge=0, lt=0.01)
    maker_fee: float | None = Field(None, ge=-0.001, lt=0.01)
    slippage_bps: float = Field(2.0, ge=0, le=500)
    maintenance_margin_ratio: float | None = Field(None, gt=0, lt=0.5)
    funding_interval_hours: float = Field(1.0, gt=0, le=24)
    # the holding time a decision is expected to have: the funding it would pay over it at the current rate
    # enters reward/risk and sizing (agent/risk/funding_cost.py); 0 = funding left out of the decision
    funding_horizon_hours: float = Field(8.0, ge=0, le=720)
    # alert (stream event + notification) when an open position's mark comes within this many ATRs of its
    # liquidation price, once per position until it moves back out (agent/engine/liquidation_alert.py);
    # 0 = off
    liquidation_alert_atr: float = Field(3.0, ge=0, le=100)

    webhook_port: int = Field(5004, ge=1, le=65535)
    socket_port: int = Field(5008, ge=1, le=65535)
    agent_port: int = Field(5003, ge=1, le=65535)
    nginx_port: int = Field(8080, ge=1, le=65535)
    bind_host: str = "127.0.0.1"
    agent_url: str = ""
    socket_url: str = ""
    webhook_url: str = (
        ""  # where the dashboard reads the webhook's health (default http://127.0.0.1:WEBHOOK_PORT)
    )
    # Let's Encrypt through compose's certbot (profile letsencrypt): the domain and the account's email
    acme_domain: str = ""
    acme_email: str = ""

    webhook_passphrase: SecretStr | None = None
    api_token: SecretStr | None = None
    webhook_max_age_s: int = Field(300, ge=1)
    signal_max_age_s: float = Field(120.0, gt=0, le=86_400)

    data_dir: Path = PROJECT_ROOT / "data"
    database_url: str = Field("", repr=False)  # may hold a password
    # the websocket service's workers share events through Redis (Flask-SocketIO's message queue)
    redis_url: str = Field("", repr=False)  # may hold a password
    redis_channel: str = Field("bluefinai", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    socket_workers: int = Field(1, ge=1, le=16)

    market_data_source: Literal["auto", "replay", "bluefin", "synthetic"] = "auto"
    auto_probe_timeout_s: float = Field(3.0, gt=0, le=30)
    replay_file: Path = DEFAULT_REPLAY_FILE
    replay_speed: float = Field(60.0, ge=0)
    replay_loop: bool = True
    symbols: Annotated[tuple[str, ...], NoDecode] = ("BTC-PERP",)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_dir: Path | None = None
    log_max_mb: float = Field(20.0, gt=0, le=10_000)  # size-based rotation of the local run's log files
    log_backups: int = Field(5, ge=0, le=100)
    log_line_max_bytes: int = Field(8192, ge=512, le=1_000_000)

    # Which service this process is (set per container); decides which secrets it must have.
    bluefinai_service: Literal["all", "agent", "webhook", "websocket"] = "all"

    # HTTPS in front (nginx): `make run` serves it when NGINX_HTTPS_PORT is set; compose always does.
    nginx_https_port: int | None = Field(None, ge=1, le=65535)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    webhook_require_tv_cert: bool = False
    tv_client_ca_file: Path = SYSTEM_CA_BUNDLE
    webhook_allowed_ips: Annotated[tuple[str, ...], NoDecode] = ()

    # Notifications (apprise URLs, comma- or space-separated; they hold tokens, so a secret)
    notify_urls: SecretStr | None = None
    notify_events: Annotated[tuple[str, ...], NoDecode] = NOTIFY_EVENT_KINDS
    notify_dedup_s: float = Field(300.0, ge=0, le=86_400)
    notify_max_per_hour: int = Field(30, ge=1, le=10_000)
    notify_error_rate_per_min: int = Field(20, ge=1, le=100_000)

    # Health and upkeep
    engine_stuck_s: float = Field(120.0, ge=5, le=86_400)
    # added to the engine loop thread's nice value: under load the webhook's answers come first
    engine_nice: int = Field(0, ge=0, le=19)
    retention_days: int = Field(30, ge=0, le=36_500)  # AI prompts/answers and events; 0 = keep forever
    backup_interval_hours: float = Field(24.0, ge=0, le=8_760)  # SQLite online backup + VACUUM; 0 = off
    backup_keep: int = Field(7, ge=1, le=1_000)
    backup_dir: Path | None = None  # default DATA_DIR/backups
    backtest_dir: Path | None = None  # default DATA_DIR/backtests: `bluefinai backtest` reports, list, show

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        items = value.split(",") if isinstance(value, str) else value
        result: list[str] = []
        for item in items:
            if not str(item).strip():
                continue
            try:
                result.append(normalise_symbol(str(item)))
            except UnknownSymbol as exc:
                raise ValueError(str(exc)) from exc
        if not result:
            raise ValueError("at least one symbol is required")
        return tuple(dict.fromkeys(result))

    @field_validator("ai_shadow_analysts", mode="before")
    @classmethod
    def _split_shadow_analysts(cls, value: Any) -> Any:
        items = value.split(",") if isinstance(value, str) else value
        names = [str(item).strip().lower() for item in items if str(item).strip()]
        unknown = [n for n in names if n not in SHADOW_ANALYSTS]
        if unknown:
            raise ValueError(f"unknown analyst {', '.join(unknown)}: use any of {', '.join(SHADOW_ANALYSTS)}")
        return tuple(dict.fromkeys(names))

    @field_validator("strategies", mode="before")
    @classmethod
    def _split_strategies(cls, value: Any) -> Any:
        items = value.split(",") if isinstance(value, str) else value
        entries = [str(item).strip() for item in items if str(item).strip()]
        for entry in entries:
            path, colon, name = entry.rpartition(":")
            if not colon:
                if not entry.replace("_", "a").isalnum():
                    raise ValueError(f"{entry!r}: a strategy is path/to/file.py:ClassName or a name")
                continue
            file = Path(path) if Path(path).is_absolute() else PROJECT_ROOT / path
            if not name.isidentifier():
                raise ValueError(f"{entry!r}: {name!r} is not a class name (path/to/file.py:ClassName)")
            if file.suffix != ".py" or not file.is_file():
                raise ValueError(f"{entry!r}: no Python file at {file}")
        return tuple(dict.fromkeys(entries))

    @field_validator("strategy_params", mode="before")
    @classmethod
    def _split_strategy_params(cls, value: Any) -> Any:
        items = value.split(",") if isinstance(value, str) else value
        entries = [str(item).strip() for item in items if str(item).strip()]
        for entry in entries:
            name, sep, text = entry.partition("=")
            strategy, dot, param = name.strip().partition(".")
            if not sep or not dot or not strategy or not param.isidentifier() or not text.strip():
                raise ValueError(
                    f"{entry!r} must look like strategy.param=value (e.g. rsi_divergence.lookback=30)"
                )
        keys = [entry.partition("=")[0].strip() for entry in entries]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} given twice")
        return tuple(entries)

    @field_validator("webhook_allowed_ips", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        result: list[str] = []
        for item in items:
            try:
                result.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (e.g. 52.89.214.238 or 10.0.0.0/8)"
                ) from None
        return tuple(result)

    @field_validator("notify_events", mode="before")
    @classmethod
    def _split_events(cls, value: Any) -> Any:
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        names = [str(item).strip().lower() for item in items if str(item).strip()]
        if names == ["all"]:
            return NOTIFY_EVENT_KINDS
        if names == ["none"]:
            return ()
        unknown = [n for n in names if n not in NOTIFY_EVENT_KINDS]
        if unknown:
            raise ValueError(
                f"unknown event {', '.join(unknown)}: use all, none or any of {', '.join(NOTIFY_EVENT_KINDS)}"
            )
        return tuple(dict.fromkeys(names))

    @field_validator("bluefin_network")
    @classmethod
    def _network(cls, value: str) -> str:
        if value.upper() in ("SUI_PROD", "SUI_STAGING"):
            return value.upper()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be SUI_PROD, SUI_STAGING or an http(s) URL (a local fake, a gateway)")
        return value.rstrip("/")

    @field_validator("bluefin_private_key")
    @classmethod
    def _key_format(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                SuiKey.parse(value.get_secret_value())
            except BadKey as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("trailing_stop")
    @classmethod
    def _trailing_format(cls, value: str | None) -> str | None:
        if value is not None:
            parse_trailing_stop(value)
        return value

    @field_validator("partial_take_profits")
    @classmethod
    def _partials_format(cls, value: str | None) -> str | None:
        if value is not None:
            parse_partial_take_profits(value)
        return value

    @field_validator("webhook_passphrase", "api_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 12:
            raise ValueError("must be at least 12 characters")
        return value

    @model_validator(mode="after")
    def _derived_and_cross_checks(self) -> Settings:
        self._derive()
        problems = cross_field_problems(self)
        if problems and not _STAND_IN.get():
            raise ValueError("\n".join(f"{', '.join(fields)}: {message}" for fields, message in problems))
        return self

    def _derive(self) -> None:
        for name in ("data_dir", "log_dir", "signals_replay_file", "replay_file", "backup_dir",
                     "backtest_dir", "tls_cert_file", "tls_key_file", "tv_client_ca_file"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and not value.is_absolute():
                setattr(self, name, PROJECT_ROOT / value)
        if self.backup_dir is None:
            self.backup_dir = self.data_dir / "backups"
        if self.backtest_dir is None:
            self.backtest_dir = self.data_dir / "backtests"
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'bluefinai.db'}"
        if not self.agent_url:
            self.agent_url = f"http://127.0.0.1:{self.agent_port}"
        if not self.socket_url:
            self.socket_url = f"http://127.0.0.1:{self.socket_port}"
        if not self.webhook_url:
            self.webhook_url = f"http://127.0.0.1:{self.webhook_port}"

    def holds_secrets_of(self, service: str) -> bool:
        """True when this process is ``service`` or runs every service (``make run``, the CLI)."""
        return self.bluefinai_service in ("all", service)

    def require(self, *names: str) -> None:
        """Fail with ConfigError unless each named (secret) setting is present."""
        missing = [f"{n.upper()}: is required by this service" for n in names if getattr(self, n) is None]
        if missing:
            raise ConfigError(missing)

    def secret(self, name: str) -> str:
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else ""

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log scrubber."""
        return [self.secret(name) for name in SECRET_FIELDS if getattr(self, name) is not None]

    def public_view(self) -> dict[str, Any]:
        """Every setting, secrets replaced by ``***`` (or null when unset)."""
        view: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                view[name.upper()] = REDACTED if value is not None else None
            elif name in ("database_url", "redis_url", "ai_cache_database_url"):
                view[name.upper()] = redact_url(value)
            else:
                view[name.upper()] = str(value) if isinstance(value, Path) else value
        return view


def cross_field_problems(settings: Settings) -> list[tuple[tuple[str, ...], str]]:
    """Every rule that spans several settings, as (variables, message); all of them, not the first."""
    s = settings
    problems: list[tuple[tuple[str, ...], str]] = []

    def problem(fields: tuple[str, ...], message: str) -> None:
        problems.append((fields, message))

    if not s.database_url.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")):
        problem(("DATABASE_URL",), "must start with sqlite:/// or postgresql://")
    if s.ai_cache_database_url and not s.ai_cache_database_url.startswith(
        ("sqlite:///", "postgresql://", "postgresql+psycopg://")
    ):
        problem(("AI_CACHE_DATABASE_URL",), "must be empty or start with sqlite:/// or postgresql://")
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        problem(("REDIS_URL",), "must start with redis://, rediss:// or unix://")
    if s.socket_workers > 1 and not s.redis_url:
        problem(("SOCKET_WORKERS",), "more than 1 needs REDIS_URL (the workers share events through Redis)")
    ports = {"WEBHOOK_PORT": s.webhook_port, "SOCKET_PORT": s.socket_port, "AGENT_PORT": s.agent_port,
             "NGINX_PORT": s.nginx_port}  # fmt: skip
    if s.nginx_https_port is not None:
        ports["NGINX_HTTPS_PORT"] = s.nginx_https_port
    for port in sorted(set(ports.values())):
        clashing = tuple(name for name, value in ports.items() if value == port)
        if len(clashing) > 1:
            problem(clashing, f"must all differ (all are {port})")
    if (s.tls_cert_file is None) != (s.tls_key_file is None):
        problem(("TLS_CERT_FILE", "TLS_KEY_FILE"), "give both (the certificate chain and its private key)")
    if s.nginx_https_port is not None and (s.tls_cert_file is None or s.tls_key_file is None):
        problem(("NGINX_HTTPS_PORT",), "needs TLS_CERT_FILE and TLS_KEY_FILE")
    agent = s.holds_secrets_of("agent")
    real = s.trading_mode == "real"
    if real and agent and s.bluefin_private_key is None:
        problem(("TRADING_MODE",), "real needs BLUEFIN_PRIVATE_KEY (refusing to trade real money)")
    if real and s.market_data_source in ("replay", "synthetic"):
        problem(
            ("TRADING_MODE",),
            f"real refuses MARKET_DATA_SOURCE={s.market_data_source}; real money trades only on live Bluefin "
            "prices (MARKET_DATA_SOURCE=bluefin or auto)",
        )
    if real and s.signals_replay_file is not None:
        problem(("TRADING_MODE",), "real refuses SIGNALS_REPLAY_FILE (replayed alerts are for tests)")
    if agent and s.ai_model_provider == "claude" and s.anthropic_api_key is None:
        problem(("AI_MODEL_PROVIDER",), "claude needs ANTHROPIC_API_KEY")
    if agent and s.ai_research_provider == "perplexity" and s.perplexity_api_key is None:
        problem(("AI_RESEARCH_PROVIDER",), "perplexity needs PERPLEXITY_API_KEY")
    if agent and s.ai_model_provider == "perplexity" and s.perplexity_api_key is None:
        problem(("AI_MODEL_PROVIDER",), "perplexity needs PERPLEXITY_API_KEY")
    if agent and "claude" in s.ai_shadow_analysts and s.anthropic_api_key is None:
        problem(("AI_SHADOW_ANALYSTS",), "claude needs ANTHROPIC_API_KEY")
    if agent and "perplexity" in s.ai_shadow_analysts and s.perplexity_api_key is None:
        problem(("AI_SHADOW_ANALYSTS",), "perplexity needs PERPLEXITY_API_KEY")
    replay_named = "replay_file" in s.model_fields_set or s.market_data_source == "replay"
    if replay_named and agent and not s.replay_file.exists():
        problem(("REPLAY_FILE",), f"not found: {s.replay_file}")
    if s.signals_replay_file is not None and agent and not s.signals_replay_file.exists():
        problem(("SIGNALS_REPLAY_FILE",), f"not found: {s.signals_replay_file}")
    return problems


def service_environment(env: Mapping[str, str], service: str) -> dict[str, str]:
    """``env`` (the variables of ``.env``) as one service may see it: the secrets it does not use left
    out, and BLUEFINAI_SERVICE set so it does not ask for them."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
    withheld = {name.upper() for name in SECRET_FIELDS} - {n.upper() for n in SERVICE_SECRETS[service]}
    kept = {key: value for key, value in env.items() if key.upper() not in withheld}
    kept["BLUEFINAI_SERVICE"] = service
    return kept


def parse_trailing_stop(text: str) -> tuple[str, float] | None:
    """``off`` -> None; ``atr:K`` (K ATRs behind the best price) or ``pct:P`` (P % behind it)."""
    cleaned = text.strip().lower()
    if cleaned in ("", "off", "none"):
        return None
    kind, _, number = cleaned.partition(":")
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if kind not in ("atr", "pct") or not (0 < value <= 100):
        raise ValueError("must be off, atr:K or pct:P with 0 < K, P <= 100 (e.g. atr:3 or pct:1.5)")
    return kind, value


def parse_partial_take_profits(text: str) -> tuple[tuple[float, float], ...]:
    """``R:FRACTION,...`` (e.g. ``1:0.5,2:0.25``): at each R multiple close that fraction of the initial
    quantity. R multiples strictly increasing, fractions in (0, 1] adding up to at most 1. ``off`` = none."""
    cleaned = text.strip().lower()
    if cleaned in ("", "off", "none"):
        return ()
    levels: list[tuple[float, float]] = []
    rule = "must be off or R:FRACTION pairs like 1:0.5,2:0.25 (R increasing, fractions summing to <= 1)"
    for part in cleaned.split(","):
        r_text, _, fraction_text = part.strip().partition(":")
        try:
            r_multiple, fraction = float(r_text), float(fraction_text)
        except ValueError:
            raise ValueError(rule) from None
        if not (r_multiple > 0 and 0 < fraction <= 1) or (levels and r_multiple <= levels[-1][0]):
            raise ValueError(rule)
        levels.append((r_multiple, fraction))
    if sum(f for _, f in levels) > 1 + 1e-9:
        raise ValueError(rule)
    return tuple(levels)


def redact_url(url: str) -> str:
    """Hide a password in a database URL."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:{REDACTED}@{host}"
    return url


def _problem_lines(error: ValidationError) -> tuple[list[str], set[str]]:
    lines: list[str] = []
    failed: set[str] = set()
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]).upper()
        message = str(item["msg"]).removeprefix("Value error, ")
        if field:
            failed.add(field.split(".")[0])
            lines.append(f"{field}: {message}")
        else:
            lines.extend(message.splitlines())
    return lines, failed


def load_settings(**overrides: Any) -> Settings:
    """Read and validate configuration; raise ConfigError with one line per problem, every problem at once
    (the rules across settings are checked too while single values are wrong, leaving out those that
    involve a wrong value)."""
    env_file = env_file_path()
    env_arg = env_file if env_file and env_file.exists() else None
    try:
        return Settings(_env_file=env_arg, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        lines, failed = _problem_lines(exc)
    if failed:
        defaults = {
            name: Settings.model_fields[name].get_default(call_default_factory=True)
            for name in Settings.model_fields
            if name.upper() in failed
        }
        token = _STAND_IN.set(True)
        try:
            stand_in = Settings(_env_file=env_arg, **{**overrides, **defaults})  # type: ignore[call-arg]
        finally:
            _STAND_IN.reset(token)
        for fields, message in cross_field_problems(stand_in):
            if not failed.intersection(fields):
                lines.append(f"{', '.join(fields)}: {message}")
    raise ConfigError(lines) from None


def generate_secret() -> str:
    return secrets.token_urlsafe(24)


def ensure_env_file(example: Path, target: Path) -> bool:
    """Create ``target`` from ``example`` with fresh WEBHOOK_PASSPHRASE and API_TOKEN. True if created."""
    if target.exists():
        return False
    lines = []
    for line in example.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key in ("WEBHOOK_PASSPHRASE", "API_TOKEN") and not line.lstrip().startswith("#"):
            line = f"{key}={generate_secret()}"
        lines.append(line)
    target.write_text("\n".join(lines) + "\n")
    target.chmod(0o600)
    return True

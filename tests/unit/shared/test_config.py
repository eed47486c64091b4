from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import ensure_env_file, load_settings
from shared.errors import ConfigError

PROJECT = Path(__file__).resolve().parents[3]


def problems(**overrides: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    return caught.value.problems


def test_defaults_are_the_embedded_simulation_setup() -> None:
    settings = load_settings()
    assert settings.trading_mode == "simulation"
    assert settings.ai_model_provider == "rules"
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("bluefinai.db")
    assert (settings.agent_port, settings.webhook_port, settings.socket_port) == (5003, 5004, 5008)
    assert settings.symbols == ("BTC-PERP",)


def test_every_invalid_value_gets_its_own_line_naming_the_variable() -> None:
    lines = problems(max_position_size=2, trading_mode="paper", webhook_port=0, symbols="BTCUSDT.P,???")
    assert len(lines) == 4
    assert any(line.startswith("MAX_POSITION_SIZE:") for line in lines)
    assert any(line.startswith("TRADING_MODE:") for line in lines)
    assert any(line.startswith("WEBHOOK_PORT:") for line in lines)
    assert any(line.startswith("SYMBOLS:") for line in lines)


def test_real_mode_without_bluefin_key_refuses_to_start() -> None:
    (line,) = problems(trading_mode="real")
    assert "BLUEFIN_PRIVATE_KEY" in line


def test_environment_overrides_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MAX_POSITION_SIZE=0.2\nRISK_TOLERANCE=aggressive\n")
    monkeypatch.setenv("BLUEFINAI_ENV_FILE", str(env_file))
    monkeypatch.setenv("MAX_POSITION_SIZE", "0.05")
    settings = load_settings()
    assert settings.max_position_size == 0.05
    assert settings.risk_tolerance == "aggressive"


def test_symbols_are_normalised_and_deduplicated() -> None:
    assert load_settings(symbols="BINANCE:BTCUSDT.P, eth-perp,BTC-PERP").symbols == ("BTC-PERP", "ETH-PERP")


def test_secrets_never_appear_in_the_public_view() -> None:
    settings = load_settings(
        api_token="token-abcdefghijkl", webhook_passphrase="pass-abcdefghijkl",
        database_url="postgresql://bob:hunter2hunter2@db:5432/x",
    )  # fmt: skip
    text = repr(settings.public_view()) + repr(settings)
    for secret in ("token-abcdefghijkl", "pass-abcdefghijkl", "hunter2hunter2"):
        assert secret not in text
    assert settings.public_view()["API_TOKEN"] == "***"


def test_short_secrets_are_rejected() -> None:
    (line,) = problems(api_token="short")
    assert line.startswith("API_TOKEN:") and "12" in line


def test_ports_must_differ() -> None:
    (line,) = problems(webhook_port=5003)
    assert "must all differ" in line


def test_env_file_is_created_from_the_example_with_fresh_secrets(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    assert ensure_env_file(PROJECT / ".env.example", target)
    first = target.read_text()
    assert not ensure_env_file(PROJECT / ".env.example", target)  # never overwritten
    values = dict(
        line.split("=", 1) for line in first.splitlines() if "=" in line and not line.startswith("#")
    )
    assert len(values["WEBHOOK_PASSPHRASE"]) >= 24 and len(values["API_TOKEN"]) >= 24
    assert values["WEBHOOK_PASSPHRASE"] != values["API_TOKEN"]
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_env_example_documents_every_setting() -> None:
    text = (PROJECT / ".env.example").read_text()
    lines = text.splitlines()
    keys = [line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")]
    from shared.config import Settings

    assert sorted(keys) == sorted(name.upper() for name in Settings.model_fields)
    for index, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[index - 1].startswith("#"), f"{line} has no comment above it"


def test_rules_across_settings_are_reported_beside_wrong_values() -> None:
    lines = problems(
        webhook_port="abc", agent_port=5008, ai_model_provider="claude", notify_events="fill,bogus",
        replay_file="/nowhere/candles.csv",
    )  # fmt: skip
    assert [line.split(":")[0] for line in lines] == [
        "WEBHOOK_PORT", "NOTIFY_EVENTS", "SOCKET_PORT, AGENT_PORT", "AI_MODEL_PROVIDER", "REPLAY_FILE",
    ]  # fmt: skip
    assert "bogus" in lines[1] and "/nowhere/candles.csv" in lines[4]


def test_a_rule_about_a_wrong_value_is_not_reported_twice() -> None:
    lines = problems(webhook_port="abc", socket_port=5003)
    assert [line.split(":")[0] for line in lines] == ["WEBHOOK_PORT", "SOCKET_PORT, AGENT_PORT"]


def test_https_needs_both_tls_files_and_allowed_ips_are_networks() -> None:
    assert problems(nginx_https_port=8443) == ["NGINX_HTTPS_PORT: needs TLS_CERT_FILE and TLS_KEY_FILE"]
    assert problems(tls_cert_file="cert.pem")[0].startswith("TLS_CERT_FILE, TLS_KEY_FILE: give both")
    settings = load_settings(webhook_allowed_ips="52.89.214.238, 10.0.0.0/8")
    assert settings.webhook_allowed_ips == ("52.89.214.238/32", "10.0.0.0/8")
    (line,) = problems(webhook_allowed_ips="52.89.214.238,tradingview.com")
    assert line.startswith("WEBHOOK_ALLOWED_IPS:") and "'tradingview.com'" in line


def test_notify_events_all_none_or_a_list() -> None:
    assert "daily_report" in load_settings(notify_events="all").notify_events
    assert load_settings(notify_events="none").notify_events == ()
    assert load_settings(notify_events="lost, liquidation").notify_events == ("lost", "liquidation")


def test_each_service_gets_only_its_secrets_and_asks_only_for_them() -> None:
    from shared.config import service_environment

    env = {"BLUEFIN_PRIVATE_KEY": "0x" + "11" * 32, "ANTHROPIC_API_KEY": "sk-ant", "WEBHOOK_PASSPHRASE": "p" * 12,
           "API_TOKEN": "t" * 12, "TRADING_MODE": "real", "AI_MODEL_PROVIDER": "claude"}  # fmt: skip
    webhook = service_environment(env, "webhook")
    assert set(webhook) == {"WEBHOOK_PASSPHRASE", "API_TOKEN", "TRADING_MODE", "AI_MODEL_PROVIDER",
                            "BLUEFINAI_SERVICE"}  # fmt: skip
    dashboard = service_environment(env, "websocket")
    assert "WEBHOOK_PASSPHRASE" not in dashboard and dashboard["API_TOKEN"] == "t" * 12
    assert service_environment(env, "agent")["BLUEFIN_PRIVATE_KEY"] == env["BLUEFIN_PRIVATE_KEY"]
    # real mode with Claude: the webhook does not need the exchange key or the Anthropic key to start
    settings = load_settings(**{k.lower(): v for k, v in webhook.items()})
    assert settings.bluefin_private_key is None and settings.trading_mode == "real"
    with pytest.raises(ConfigError):
        load_settings(**{k.lower(): v for k, v in webhook.items() if k != "BLUEFINAI_SERVICE"})


def test_several_websocket_workers_need_redis_and_its_password_is_never_shown() -> None:
    assert problems(socket_workers=2) == [
        "SOCKET_WORKERS: more than 1 needs REDIS_URL (the workers share events through Redis)"
    ]
    assert problems(redis_url="http://cache:6379")[0].startswith("REDIS_URL: must start with redis://")
    assert problems(redis_channel="has space")[0].startswith("REDIS_CHANNEL:")
    settings = load_settings(socket_workers=3, redis_url="redis://app:s3cret-pass@cache:6379/0")
    assert settings.socket_workers == 3
    assert "s3cret-pass" not in str(settings.public_view()) and "s3cret-pass" not in repr(settings)

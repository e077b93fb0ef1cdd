"""Configuration from the environment and ``.env``, and its start-up errors (SPEC §6)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from shared.errors import SettingsError
from shared.settings import (
    ApiSettings,
    BrokerSettings,
    DatabaseSettings,
    LogSettings,
    ProviderSettings,
    load_settings,
    secret_values,
)

GOOD_TOKEN = "a-good-api-token-0123456789"


def _ours(name: str) -> bool:
    return name.upper().startswith("MAILER_") or name.upper() == "TOKEN_SENDER"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No mailer variable set and no ``.env`` around: only what a test writes counts."""
    for name in list(os.environ):
        if _ours(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write_env(directory: Path, *lines: str) -> None:
    (directory / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- API -----------------------------------------------------------------------------------


def test_missing_api_token_is_named() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(ApiSettings)

    assert "MAILER_API_TOKEN" in str(raised.value)
    assert "required" in str(raised.value)


def test_api_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_API_TOKEN", GOOD_TOKEN)

    settings = load_settings(ApiSettings)

    assert settings.api_token.get_secret_value() == GOOD_TOKEN
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8000)
    assert GOOD_TOKEN not in repr(settings)


def test_api_settings_from_dotenv(clean_environment: Path) -> None:
    _write_env(
        clean_environment,
        "# a comment",
        f"MAILER_API_TOKEN={GOOD_TOKEN}",
        "MAILER_API_PORT=9001",
        "SOMETHING_ELSE=ignored",
    )

    settings = load_settings(ApiSettings)

    assert settings.api_token.get_secret_value() == GOOD_TOKEN
    assert settings.api_port == 9001


def test_environment_wins_over_dotenv(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_env(clean_environment, "MAILER_API_TOKEN=token-from-the-dotenv-file")
    monkeypatch.setenv("MAILER_API_TOKEN", GOOD_TOKEN)

    assert load_settings(ApiSettings).api_token.get_secret_value() == GOOD_TOKEN


def test_dotenv_elsewhere_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    _write_env(other, f"MAILER_API_TOKEN={GOOD_TOKEN}")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)

    with pytest.raises(SettingsError, match="MAILER_API_TOKEN"):
        load_settings(ApiSettings)


@pytest.mark.parametrize("value", ["", "short-secret"])
def test_too_short_api_token_is_named_not_echoed(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MAILER_API_TOKEN", value)

    with pytest.raises(SettingsError) as raised:
        load_settings(ApiSettings)

    message = str(raised.value)
    assert "MAILER_API_TOKEN" in message
    assert "short-secret" not in message


def test_invalid_port_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_API_TOKEN", GOOD_TOKEN)
    monkeypatch.setenv("MAILER_API_PORT", "eighty")

    with pytest.raises(SettingsError) as raised:
        load_settings(ApiSettings)

    assert "MAILER_API_PORT" in str(raised.value)
    assert "MAILER_API_TOKEN" not in str(raised.value)


# --- provider ------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["MAILER_PROVIDER_TOKEN", "TOKEN_SENDER"])
def test_provider_token_from_either_name(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "provider-jwt")

    settings = load_settings(ProviderSettings)

    assert settings.provider_token.get_secret_value() == "provider-jwt"
    assert settings.provider_url == "https://probe.fbrq.cloud/v1"


@pytest.mark.parametrize("variable", ["MAILER_PROVIDER_TOKEN", "TOKEN_SENDER"])
def test_provider_token_from_dotenv(clean_environment: Path, variable: str) -> None:
    _write_env(clean_environment, f"{variable}=provider-jwt-from-file")

    settings = load_settings(ProviderSettings)

    assert settings.provider_token.get_secret_value() == "provider-jwt-from-file"


def test_missing_provider_token_names_both_variables() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(ProviderSettings)

    assert "MAILER_PROVIDER_TOKEN" in str(raised.value)
    assert "TOKEN_SENDER" in str(raised.value)


def test_provider_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_SENDER", "provider-jwt")
    monkeypatch.setenv("MAILER_PROVIDER_URL", "http://127.0.0.1:9999/v1")

    assert load_settings(ProviderSettings).provider_url == "http://127.0.0.1:9999/v1"


# --- groups with defaults ------------------------------------------------------------------


def test_every_other_group_has_defaults() -> None:
    database = load_settings(DatabaseSettings)
    broker = load_settings(BrokerSettings)
    logs = load_settings(LogSettings)

    assert database.database_url.startswith("postgresql+asyncpg://")
    assert database.database_pool_size == 10
    assert broker.rabbitmq_url.get_secret_value() == "amqp://guest:guest@127.0.0.1:5672/"
    assert (logs.log_level, logs.log_format) == ("INFO", "json")


def test_invalid_pool_size_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_DATABASE_POOL_SIZE", "0")

    with pytest.raises(SettingsError, match="MAILER_DATABASE_POOL_SIZE"):
        load_settings(DatabaseSettings)


@pytest.mark.parametrize(
    ("variable", "value", "choice"),
    [("MAILER_LOG_LEVEL", "verbose", "WARNING"), ("MAILER_LOG_FORMAT", "xml", "console")],
)
def test_unknown_log_setting_is_named_with_its_choices(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, choice: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as raised:
        load_settings(LogSettings)

    assert variable in str(raised.value)
    assert choice in str(raised.value)


# --- the database URL ----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
def test_postgres_urls_mean_asyncpg(monkeypatch: pytest.MonkeyPatch, scheme: str) -> None:
    monkeypatch.setenv("MAILER_DATABASE_URL", f"{scheme}://u@h/db")

    assert load_settings(DatabaseSettings).database_url == "postgresql+asyncpg://u@h/db"


@pytest.mark.parametrize(
    "url", ["mysql://u:s3cretpw@h/db", "postgresql+psycopg://u:s3cretpw@h/db", "s3cretpw"]
)
def test_other_database_url_is_named_not_echoed(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("MAILER_DATABASE_URL", url)

    with pytest.raises(SettingsError) as raised:
        load_settings(DatabaseSettings)

    assert "MAILER_DATABASE_URL" in str(raised.value)
    assert "s3cretpw" not in str(raised.value)


# --- what logs redact ----------------------------------------------------------------------


def test_secret_values_finds_every_credential() -> None:
    groups = [
        ApiSettings(_env_file=None, api_token=SecretStr(GOOD_TOKEN)),
        ProviderSettings(_env_file=None, MAILER_PROVIDER_TOKEN="provider-jwt-5e1"),
        BrokerSettings(_env_file=None, rabbitmq_url=SecretStr("amqp://mailer:rabbit-pw-8c@mq/")),
        DatabaseSettings(_env_file=None, database_url="postgresql://u:p%40ss%2Fw0rd@db:5432/m"),
    ]

    found = set(secret_values(*groups))

    assert {GOOD_TOKEN, "provider-jwt-5e1", "rabbit-pw-8c"} <= found
    assert {"p%40ss%2Fw0rd", "p@ss/w0rd"} <= found  # as written in the URL, and decoded
    assert not {"u", "mailer", "db", "mq", "127.0.0.1"} & found


# --- the command ---------------------------------------------------------------------------


def _mailer(command: str, directory: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run ``mailer command`` in ``directory``, with no mailer variable but ``variables``."""
    environment = {name: value for name, value in os.environ.items() if not _ours(name)}
    return subprocess.run(
        [str(Path(sys.executable).parent / "mailer"), command],
        cwd=directory,
        env=environment | variables,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_mailer_api_without_token_exits_naming_it(clean_environment: Path) -> None:
    finished = _mailer("api", clean_environment)

    assert finished.returncode != 0
    assert "MAILER_API_TOKEN" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_mailer_migrate_on_an_unreachable_server_says_so_in_one_line(
    clean_environment: Path,
) -> None:
    url = "postgresql+asyncpg://postgres:pw-9c1e7f@127.0.0.1:1/mailer"

    finished = _mailer("migrate", clean_environment, MAILER_DATABASE_URL=url)

    assert finished.returncode == 1
    assert "Traceback" not in finished.stderr
    (line,) = finished.stderr.splitlines()
    assert line.startswith("mailer: cannot migrate database 'mailer': "), line
    assert "pw-9c1e7f" not in line

"""``StubSettings``: which variables give the stub its token, port and sizes."""

import os
from pathlib import Path

import pytest

from services.provider_stub.settings import StubSettings
from shared.errors import SettingsError
from shared.settings import load_settings
from tests.provider_stub.helpers import stub_settings

TOKEN_VARIABLES = ("MAILER_STUB_TOKEN", "MAILER_PROVIDER_TOKEN", "TOKEN_SENDER")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No mailer variable and no ``.env``: only what a test sets counts."""
    for name in list(os.environ):
        if name.upper().startswith("MAILER_") or name.upper() == "TOKEN_SENDER":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_helper_settings_carry_the_token() -> None:
    settings = stub_settings(8123, journal_size=10)

    assert settings.stub_token.get_secret_value() == "stub-test-token-0123456789"
    assert (settings.stub_port, settings.stub_journal_size) == (8123, 10)
    assert "stub-test-token" not in repr(settings)


def test_model_validate_takes_the_alias() -> None:
    settings = StubSettings.model_validate({"MAILER_STUB_TOKEN": "t0k", "stub_port": 9001})

    assert settings.stub_token.get_secret_value() == "t0k"
    assert settings.stub_port == 9001


@pytest.mark.parametrize("variable", TOKEN_VARIABLES)
def test_each_token_variable_is_read(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, f"token-from-{variable}")

    settings = load_settings(StubSettings)

    assert settings.stub_token.get_secret_value() == f"token-from-{variable}"


def test_stub_token_wins_over_the_provider_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_PROVIDER_TOKEN", "provider")
    monkeypatch.setenv("MAILER_STUB_TOKEN", "stub")

    assert load_settings(StubSettings).stub_token.get_secret_value() == "stub"


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_STUB_TOKEN", "t")
    defaults = load_settings(StubSettings)
    monkeypatch.setenv("MAILER_STUB_PORT", "9100")
    monkeypatch.setenv("MAILER_STUB_JOURNAL_SIZE", "10")
    monkeypatch.setenv("MAILER_STUB_HANG_MAX_S", "2.5")

    configured = load_settings(StubSettings)

    assert (defaults.stub_host, defaults.stub_port) == ("127.0.0.1", 8900)
    assert (defaults.stub_journal_size, defaults.stub_hang_max_s) == (50_000, 300.0)
    assert (configured.stub_port, configured.stub_journal_size) == (9100, 10)
    assert configured.stub_hang_max_s == 2.5


def test_missing_token_names_every_variable() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(StubSettings)

    assert all(variable in str(raised.value) for variable in TOKEN_VARIABLES)
    assert "required" in str(raised.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAILER_STUB_PORT", "0"),
        ("MAILER_STUB_PORT", "70000"),
        ("MAILER_STUB_JOURNAL_SIZE", "0"),
        ("MAILER_STUB_HANG_MAX_S", "0"),
    ],
)
def test_out_of_range_value_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("MAILER_STUB_TOKEN", "t")
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError, match=variable):
        load_settings(StubSettings)

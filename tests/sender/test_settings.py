"""The sender's settings: documented defaults, and errors that name the variable."""

import os
from pathlib import Path

import pytest

from services.sender.settings import SenderSettings
from shared.errors import SettingsError
from shared.settings import load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in [name for name in os.environ if name.startswith("MAILER_SENDER_")]:
        monkeypatch.delenv(name)
    settings = load_settings(SenderSettings)
    assert settings.sender_prefetch == 200
    assert settings.sender_request_timeout_s == 10
    assert settings.sender_max_attempts == 8
    assert settings.sender_auth_hold_max_s <= 60


def test_backoff_max_below_min_names_both(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILER_SENDER_AUTH_BACKOFF_MIN_S", "10")
    monkeypatch.setenv("MAILER_SENDER_AUTH_BACKOFF_MAX_S", "5")
    with pytest.raises(SettingsError, match=r"MAILER_SENDER_AUTH_BACKOFF_MAX_S is invalid.*MIN_S"):
        load_settings(SenderSettings)

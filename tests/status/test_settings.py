"""``StatusSettings``: defaults, the variables that change them, and the errors they give."""

import os
from pathlib import Path

import pytest

from services.status.settings import StatusSettings
from shared.errors import SettingsError
from shared.settings import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No mailer variable and no ``.env``: only what a test sets counts."""
    for name in list(os.environ):
        if name.upper().startswith("MAILER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings(StatusSettings)

    assert settings.status_prefetch == 2_000
    assert settings.status_batch_size == 500
    assert settings.status_flush_interval_ms == 50
    assert settings.status_db_retry_max_s == 5.0


def test_variables_set_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_STATUS_PREFETCH", "300")
    monkeypatch.setenv("MAILER_STATUS_BATCH_SIZE", "300")
    monkeypatch.setenv("MAILER_STATUS_FLUSH_INTERVAL_MS", "10")

    settings = load_settings(StatusSettings)

    assert (settings.status_prefetch, settings.status_batch_size) == (300, 300)
    assert settings.status_flush_interval_ms == 10


def test_a_batch_larger_than_the_prefetch_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILER_STATUS_PREFETCH", "100")
    monkeypatch.setenv("MAILER_STATUS_BATCH_SIZE", "500")

    with pytest.raises(SettingsError) as raised:
        load_settings(StatusSettings)

    assert str(raised.value) == (
        "MAILER_STATUS_BATCH_SIZE is invalid: must not exceed MAILER_STATUS_PREFETCH (500 > 100)"
    )


def test_a_zero_interval_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILER_STATUS_FLUSH_INTERVAL_MS", "0")

    with pytest.raises(SettingsError, match="MAILER_STATUS_FLUSH_INTERVAL_MS is invalid"):
        load_settings(StatusSettings)

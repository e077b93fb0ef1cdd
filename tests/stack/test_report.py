"""The demo's console: as wide as its lines where no terminal says otherwise."""

import io
import sys

import pytest

from services.stack.report import PIPED_COLUMNS, demo_console


@pytest.fixture
def piped(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Output to a pipe, as in CI or `make run | tee`, with nothing forcing a terminal.

    Set in the test itself: pytest puts its own capture back between setup and call.
    """
    for name in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    return io.StringIO()


def test_without_a_terminal_the_progress_line_is_not_cut_at_80_columns(
    piped: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", piped)
    console = demo_console()

    console.print("x" * 150)

    assert console.width == PIPED_COLUMNS
    assert piped.getvalue() == "x" * 150 + "\n"


def test_columns_still_sets_the_width(piped: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", piped)
    monkeypatch.setenv("COLUMNS", "100")

    assert demo_console().width == 100

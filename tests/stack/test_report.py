"""The demo's console: as wide as its lines where no terminal says otherwise."""

import io
import os
import sys

import pytest

from services.stack.report import PIPED_COLUMNS, demo_console


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """No terminal on stdin, stdout or stderr (a CI log), nothing forcing one, no COLUMNS.

    stdout itself is replaced in each test: pytest puts its capture back between setup and
    call.
    """
    monkeypatch.setattr(os, "isatty", lambda fd: False)
    for name in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    return io.StringIO()


def test_without_a_terminal_the_progress_line_is_not_cut_at_80_columns(
    no_terminal: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", no_terminal)
    console = demo_console()

    console.print("x" * 150)

    assert console.width == PIPED_COLUMNS
    assert no_terminal.getvalue() == "x" * 150 + "\n"


def test_columns_still_sets_the_width(
    no_terminal: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", no_terminal)
    monkeypatch.setenv("COLUMNS", "100")

    assert demo_console().width == 100


def test_a_terminal_on_another_stream_keeps_rich_s_own_width(
    no_terminal: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make run | tee log``: stdout is a pipe, stderr the terminal rich takes the size of."""
    monkeypatch.setattr(sys, "stdout", no_terminal)
    monkeypatch.setattr(os, "isatty", lambda fd: fd == 2)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=0: os.terminal_size((90, 30)))

    assert demo_console().width == 90

"""The benchmark's ``--set``: a setting tried on a scenario, never published as the scenario."""

import pytest
import typer

from bench.e2e.__main__ import _setting
from bench.e2e.scenarios import SCENARIOS


def test_a_setting_is_a_mailer_variable_and_its_value() -> None:
    assert _setting("MAILER_SENDER_PREFETCH=200") == ("MAILER_SENDER_PREFETCH", "200")
    assert _setting("MAILER_PROVIDER_URL=http://x/?a=b") == ("MAILER_PROVIDER_URL", "http://x/?a=b")


@pytest.mark.parametrize("pair", ["SENDER_PREFETCH=200", "MAILER_SENDER_PREFETCH", "=1"])
def test_anything_else_is_refused(pair: str) -> None:
    with pytest.raises(typer.BadParameter):
        _setting(pair)


def test_a_scenario_with_a_setting_keeps_its_own_and_is_marked_overridden() -> None:
    s4 = SCENARIOS["S4"]
    tried = s4.with_settings({"MAILER_SENDER_PREFETCH": "200"})

    assert tried.settings == {**s4.settings, "MAILER_SENDER_PREFETCH": "200"}
    assert tried.overridden
    assert not s4.overridden
    assert s4.with_settings({}) is s4

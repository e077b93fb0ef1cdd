"""The four scenarios of issue 7 and the stub behaviour and settings each one runs with."""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SENDER_TIMEOUT_S = 2
"""S4's provider call timeout (``MAILER_SENDER_REQUEST_TIMEOUT_S``, default 10 s): a hang
costs the sender one timeout, and 10 s per hang would measure the timeout, not the service."""


@dataclass(frozen=True)
class Scenario:
    """One mailing to every seeded client, through a stack of this shape."""

    name: str
    shape: str
    """What the scenario is, apart from its audience."""
    clients: int
    senders: int = 2
    behaviour: Mapping[str, Any] = field(default_factory=dict)
    """The stub's behaviour (``PUT /_stub/behaviour``); omitted keys keep the defaults."""
    settings: Mapping[str, str] = field(default_factory=dict)
    """``MAILER_*`` variables every service gets beyond the defaults."""
    overridden: bool = False
    """Whether ``--clients`` or ``--set`` changed the scenario: its figures are not the
    scenario's own, and BENCHMARKS.md keeps the last run of the scenario as defined."""

    @property
    def title(self) -> str:
        return f"{self.clients:,} clients, {self.shape}"

    def with_clients(self, clients: int | None) -> "Scenario":
        if clients is None or clients == self.clients:
            return self
        return replace(self, clients=clients, overridden=True)

    def with_settings(self, settings: Mapping[str, str]) -> "Scenario":
        """The scenario with more ``MAILER_*`` variables (``--set``): to try a setting."""
        if not settings:
            return self
        return replace(self, settings={**self.settings, **settings}, overridden=True)


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("S1", "stub at 0 ms, 2 senders", 100_000),
        Scenario(
            "S2",
            "200 ms provider latency, 2 senders",
            100_000,
            behaviour={"latency_ms": 200},
        ),
        Scenario("S3", "stub at 0 ms, 2 senders", 1_000_000),
        Scenario(
            "S4",
            f"20 % 503s and 5 % hangs, 2 senders, sender timeout {SENDER_TIMEOUT_S} s",
            100_000,
            behaviour={"error_rate": 0.2, "error_status": 503, "hang_rate": 0.05},
            settings={"MAILER_SENDER_REQUEST_TIMEOUT_S": str(SENDER_TIMEOUT_S)},
        ),
    )
}


def deadline_s(clients: int) -> float:
    """How far ahead ``end_at`` is set: never the limit unless the run is 10 x too slow
    (100 messages/s), and at least 10 minutes."""
    return 600.0 + clients / 100

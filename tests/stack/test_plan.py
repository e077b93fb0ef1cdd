"""What ``mailer up`` decides to run, and with which environment."""

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from services.stack.settings import StackSettings
from services.stack.up import StackOptions, StackPlan, plan_stack
from shared.settings import ApiSettings

API_TOKEN = "stack-plan-api-token-0123"
PORT = "MAILER_HEALTH_PORT"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No mailer variable set and no ``.env`` around: only what a test gives counts."""
    for name in list(os.environ):
        if name.upper().startswith("MAILER_") or name.upper() == "TOKEN_SENDER":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def plan(
    options: StackOptions, environ: dict[str, str] | None = None, **settings: Any
) -> StackPlan:
    everywhere = "0.0.0.0"  # noqa: S104 - only a setting: nothing listens in this test
    api = ApiSettings(api_token=SecretStr(API_TOKEN), api_host=everywhere, api_port=8000)
    fields: dict[str, Any] = {**(environ or {}), **settings}
    stack = StackSettings(_env_file=None, **fields)
    return plan_stack(options, api, stack, {"PATH": "/bin", **(environ or {})})


def env_of(found: StackPlan) -> dict[str, str]:
    """The environment every child shares: all of it but its own health port."""
    envs = {
        tuple(sorted((name, value) for name, value in (spec.env or {}).items() if name != PORT))
        for spec in (found.migrate, *found.services)
    }
    assert len(envs) == 1, "every child gets the same environment"
    return dict(next(iter(envs)))


def test_runs_each_service_once_and_the_senders_n_times_in_dependency_layers() -> None:
    found = plan(StackOptions(senders=3))

    names = [spec.name for spec in found.services]
    layers = {spec.name: spec.layer for spec in found.services}
    assert sorted(names) == sorted(
        ["stub", "status", "sender-1", "sender-2", "sender-3", "planner", "api"]
    )
    assert layers["stub"] < layers["status"] < layers["sender-1"] < layers["planner"]
    assert layers["api"] == layers["planner"]
    assert found.migrate.argv == [sys.executable, "-m", "services.cli", "migrate"]
    assert {spec.argv[-1] for spec in found.services if spec.name.startswith("sender")} == {
        "sender"
    }
    assert found.name_width == len("sender-1")


def test_without_a_provider_token_the_stub_and_the_senders_share_a_random_one() -> None:
    first = env_of(plan(StackOptions(stub_port=18900, api_port=18000)))
    second = env_of(plan(StackOptions(stub_port=18900, api_port=18000)))

    assert first["MAILER_PROVIDER_URL"] == "http://127.0.0.1:18900/v1"
    assert first["MAILER_STUB_PORT"] == "18900"
    assert first["MAILER_API_PORT"] == "18000"
    assert first["MAILER_API_TOKEN"] == API_TOKEN
    assert len(first["MAILER_PROVIDER_TOKEN"]) >= 16
    assert first["MAILER_STUB_TOKEN"] == first["MAILER_PROVIDER_TOKEN"]
    assert first["MAILER_PROVIDER_TOKEN"] != second["MAILER_PROVIDER_TOKEN"]


def test_a_configured_provider_token_is_the_stubs_token_too() -> None:
    env = env_of(plan(StackOptions(), {"TOKEN_SENDER": "older-deployment-jwt"}))

    assert env["MAILER_PROVIDER_TOKEN"] == env["MAILER_STUB_TOKEN"] == "older-deployment-jwt"
    assert env["MAILER_STUB_PORT"] == "8900"


def test_the_stubs_configured_token_is_the_senders_too() -> None:
    """``make run`` writes MAILER_STUB_TOKEN into .env; a ``make up`` user calls the stub so.
    It comes first, as for ``mailer stub`` alone."""
    alone = env_of(plan(StackOptions(), stub_token=SecretStr("token-from-dot-env")))
    both = env_of(
        plan(StackOptions(), {"MAILER_PROVIDER_TOKEN": "jwt"}, stub_token=SecretStr("from-env"))
    )

    assert alone["MAILER_PROVIDER_TOKEN"] == alone["MAILER_STUB_TOKEN"] == "token-from-dot-env"
    assert both["MAILER_PROVIDER_TOKEN"] == both["MAILER_STUB_TOKEN"] == "from-env"


def test_without_the_stub_the_provider_settings_are_left_alone() -> None:
    configured = {"MAILER_PROVIDER_URL": "https://provider.example/v1"}
    found = plan(StackOptions(stub=False), {**configured, "MAILER_PROVIDER_TOKEN": "jwt"})

    env = env_of(found)
    assert "stub" not in [spec.name for spec in found.services]
    assert found.stub_url is None
    assert env["MAILER_PROVIDER_URL"] == "https://provider.example/v1"
    assert "MAILER_STUB_TOKEN" not in env
    assert found.api_url == "http://127.0.0.1:8000"  # the API listens everywhere: ask locally


def test_planner_senders_and_status_each_get_a_health_port_of_their_own() -> None:
    # One set in the environment would make every sender bind the same port.
    found = plan(StackOptions(senders=2), {PORT: "9100"})

    ports = {spec.name: (spec.env or {}).get(PORT) for spec in (found.migrate, *found.services)}
    served = {name: port for name, port in ports.items() if port is not None}
    assert sorted(served) == ["planner", "sender-1", "sender-2", "status"]
    assert len(set(served.values())) == len(served)
    assert "9100" not in served.values()
    assert found.health_urls == {name: f"http://127.0.0.1:{port}" for name, port in served.items()}

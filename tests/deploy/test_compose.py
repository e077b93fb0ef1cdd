"""The compose file, checked without a Docker engine: schema and commands."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.core import TyperGroup
from typer.main import get_command

from services.cli import app
from services.stack.network import free_port
from shared.health import serving
from shared.settings import HealthSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
# The Compose Specification's schema lies in the project's shared folder beside the repository
# (as CI lays it out); MAILER_COMPOSE_SCHEMA names it for a clone made elsewhere.
SCHEMA = Path(
    os.environ.get(
        "MAILER_COMPOSE_SCHEMA", ROOT.parent / "shared" / "schemas" / "compose-spec.json"
    )
)


def test_compose_file_matches_the_compose_specification() -> None:
    assert SCHEMA.is_file(), (
        f"the Compose Specification schema is expected at {SCHEMA};"
        " set MAILER_COMPOSE_SCHEMA to its path"
    )
    check = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(check), "--schemafile", str(SCHEMA), str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_mailer_service_runs_an_existing_command() -> None:
    services = YAML(typ="safe").load(COMPOSE.read_text())["services"]
    group = get_command(app)
    assert isinstance(group, TyperGroup)  # an app of several commands is a group
    commands = set(group.commands)
    used = {name: spec["command"][0] for name, spec in services.items() if "command" in spec}
    assert used, "no service runs a mailer command"
    assert {name: cmd for name, cmd in used.items() if cmd not in commands} == {}


def _services() -> dict[str, Any]:
    services: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text())["services"]
    return services


def _interpolate(value: str, environ: dict[str, str]) -> str:
    """Compose's ``${NAME}`` and ``${NAME:-default}``, nested defaults included."""
    start = value.find("${")
    if start < 0:
        return value
    depth, end = 0, start
    for end in range(start, len(value)):
        depth += {"{": 1, "}": -1}.get(value[end], 0)
        if depth == 0 and value[end] == "}":
            break
    name, _, default = value[start + 2 : end].partition(":-")
    resolved = environ.get(name) or _interpolate(default, environ)
    return value[:start] + resolved + _interpolate(value[end + 1 :], environ)


def test_senders_scale_without_clashing() -> None:
    sender = _services()["sender"]
    assert "container_name" not in sender
    assert "ports" not in sender
    # A stopping sender drains in-flight work for up to MAILER_SENDER_STOP_TIMEOUT_S (15 s).
    assert int(sender["stop_grace_period"].removesuffix("s")) > 15


def test_workers_start_on_a_migrated_database_and_a_healthy_broker() -> None:
    services = _services()
    for name in ("planner", "sender", "status"):
        conditions = {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}
        assert conditions["migrate"] == "service_completed_successfully", name
        assert conditions["postgres"] == "service_healthy", name
        assert conditions["rabbitmq"] == "service_healthy", name


@pytest.mark.parametrize(
    ("environ", "token"),
    [
        ({}, "stub-token-for-local-runs"),
        ({"MAILER_STUB_TOKEN": "from-make-run"}, "from-make-run"),
        ({"MAILER_PROVIDER_TOKEN": "jwt"}, "jwt"),
        ({"TOKEN_SENDER": "older-jwt"}, "older-jwt"),
    ],
)
def test_senders_call_the_stub_with_its_token_by_default(
    environ: dict[str, str], token: str
) -> None:
    services = _services()
    sender = services["sender"]["environment"]
    stub = services["stub"]["environment"]

    url = _interpolate(sender["MAILER_PROVIDER_URL"], environ)
    assert url == f"http://stub:{stub['MAILER_STUB_PORT']}/v1"
    assert _interpolate(sender["MAILER_PROVIDER_TOKEN"], environ) == token
    assert _interpolate(stub["MAILER_STUB_TOKEN"], environ) == token


def test_the_provider_url_can_name_the_real_provider() -> None:
    sender = _services()["sender"]["environment"]
    real = "https://probe.fbrq.cloud/v1"

    assert _interpolate(sender["MAILER_PROVIDER_URL"], {"MAILER_PROVIDER_URL": real}) == real


def _healthcheck_of(name: str) -> tuple[list[str], str]:
    """The service's healthcheck command and the health port its environment sets."""
    service = _services()[name]
    command: list[str] = service["healthcheck"]["test"]
    return command, str(service["environment"]["MAILER_HEALTH_PORT"])


@pytest.mark.parametrize("name", ["planner", "sender", "status"])
async def test_workers_are_healthy_only_while_their_readyz_answers_200(name: str) -> None:
    """The healthcheck's own command, run here against a health server that is ready, then not:
    it must pass for the first and fail for the second (a 503 is not a live port)."""
    command, port = _healthcheck_of(name)
    assert command[:3] == ["CMD", "python", "-c"], command
    assert 1 <= int(port) <= 65535
    reason: str | None = None

    async def consumer() -> str | None:
        return reason

    # A free port of this host stands in for the container's fixed one.
    settings = HealthSettings(_env_file=None, health_port=free_port())
    async with serving(settings, lambda _settings: {"consumer:mailer.work": consumer}):
        ready = await _exit_code(command[3], settings)
        reason = "the broker counts no consumer on the queue"
        lost = await _exit_code(command[3], settings)

    assert (ready, lost) == (0, 1)


async def _exit_code(code: str, settings: HealthSettings) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        env={"MAILER_HEALTH_PORT": str(settings.health_port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), 30)

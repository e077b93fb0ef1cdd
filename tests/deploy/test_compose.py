"""The compose file, checked without a Docker engine: schema and commands."""

import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML
from typer.core import TyperGroup
from typer.main import get_command

from services.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
# The Compose Specification's schema lies in the shared folder beside the repository.
SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"


def test_compose_file_matches_the_compose_specification() -> None:
    assert SCHEMA.is_file(), f"the Compose Specification schema is expected at {SCHEMA}"
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

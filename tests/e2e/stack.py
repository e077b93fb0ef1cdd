"""The real stack as processes, on a database and a RabbitMQ vhost of its own.

Built with the code of ``mailer up`` (its plan, its supervisor, its start and stop order), so
that what is tested here is what an operator runs; only the shape (how many planners and
senders) and a few settings are chosen per test.
"""

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from services.stack.network import free_port
from services.stack.processes import Child, ChildSpec, Supervisor
from services.stack.settings import StackSettings
from services.stack.up import (
    FRONT_LAYER,
    StackOptions,
    StackPlan,
    mailer_command,
    open_stack,
    plan_stack,
)
from shared.migrate import drop_database
from shared.settings import ApiSettings
from tests.conftest import ADMIN_URL, _vhost, database_url_of, unique_database_name

API_TOKEN = "e2e-api-token-0123456789"
STARTED_TIMEOUT_S = 30.0
"""How long a planner, sender or status process may take to log that it has started."""


@dataclass(frozen=True)
class Shape:
    """How many replicas run, and settings (``MAILER_*``) beyond the defaults."""

    planners: int = 1
    senders: int = 2
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    """A running stack: where to reach it, and every line its processes wrote."""

    plan: StackPlan
    supervisor: Supervisor
    database_url: str
    vhost_url: str
    log_path: Path
    lines: list[str] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return self.plan.api_url

    @property
    def stub_url(self) -> str:
        assert self.plan.stub_url is not None
        return self.plan.stub_url

    def events(self, name: str) -> list[dict[str, Any]]:
        """The structured log events the process ``name`` has written so far."""
        found = []
        for line in list(self.lines):
            head, _, text = line.partition(" | ")
            if head.rstrip() == name and text.startswith("{"):
                with contextlib.suppress(ValueError):
                    found.append(json.loads(text))
        return found

    async def start(self, name: str, command: str, layer: int) -> Child:
        """One more ``mailer <command>`` process, configured like the others; once started.

        The test stops it with :meth:`stop`; if it fails first, the stack stops it at the end.
        """
        # The environment every child shares: migrate's has no health port of a child's own.
        env = self.plan.migrate.env
        spec = ChildSpec(name, mailer_command(command), env, layer)
        child = await self.supervisor.start(spec, watched=False)
        await self.started(name, command)
        return child

    async def stop(self, child: Child) -> int:
        """Stop a process :meth:`start` started, as the stack would (SIGTERM); its exit code."""
        child.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(asyncio.shield(child.ended), self.plan.stop_timeout_s)

    async def started(self, name: str, command: str) -> None:
        """Return once ``name`` has logged ``<command>.started``."""
        deadline = time.monotonic() + STARTED_TIMEOUT_S
        wanted = f"{command}.started"
        while not any(event.get("event") == wanted for event in self.events(name)):
            assert time.monotonic() < deadline, f"{name} did not start; see {self.log_path}"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_stack(shape: Shape, workdir: Path) -> AsyncIterator[Stack]:
    """Migrate a new database, start every service and wait until each has started.

    Everything runs in ``workdir``: the services read a ``.env`` from their working directory,
    and a developer's own must not change what is tested.
    """
    name = unique_database_name("e2e")
    database_url = database_url_of(name)
    vhost = contextlib.contextmanager(_vhost)(f"mailer_e2e_{uuid.uuid4().hex[:12]}")
    with contextlib.chdir(workdir), vhost as vhost_url:
        plan = _plan(shape, database_url, vhost_url)
        log_path = workdir / "stack.log"
        with log_path.open("a", buffering=1, encoding="utf-8") as sink:
            lines: list[str] = []

            def write(line: str) -> None:
                lines.append(line)
                print(line, file=sink)

            supervisor = Supervisor(
                write,
                own_name="e2e",
                name_width=plan.name_width,
                stop_timeout_s=plan.stop_timeout_s,
            )
            stack = Stack(plan, supervisor, database_url, vhost_url, log_path, lines)
            try:
                async with open_stack(plan, supervisor):
                    await _all_started(stack)
                    yield stack
            finally:
                await drop_database(ADMIN_URL, name)


def _plan(shape: Shape, database_url: str, vhost_url: str) -> StackPlan:
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "MAILER_DATABASE_URL": database_url,
        "MAILER_RABBITMQ_URL": vhost_url,
        **shape.settings,
    }
    api = ApiSettings(api_token=SecretStr(API_TOKEN), _env_file=None)
    options = StackOptions(shape.senders, True, api_port=free_port(), stub_port=free_port())
    plan = plan_stack(options, api, StackSettings(_env_file=None), environ)
    env = plan.migrate.env
    more = [
        ChildSpec(f"planner-{n}", mailer_command("planner"), env, FRONT_LAYER)
        for n in range(2, shape.planners + 1)
    ]
    return replace(plan, services=(*plan.services, *more))


async def _all_started(stack: Stack) -> None:
    for spec in stack.plan.services:
        command = spec.argv[-1]
        if command in ("planner", "sender", "status"):
            await stack.started(spec.name, command)

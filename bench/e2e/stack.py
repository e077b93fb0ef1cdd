"""The real stack, as ``mailer up`` runs it, on a database and a RabbitMQ vhost of its own.

The plan, the start order, the readiness probes and the stop order are ``services.stack``'s;
only the environment is the benchmark's: a fresh database and vhost, and nothing from the
caller's ``MAILER_*`` variables or ``.env`` (the children run in an empty directory), so that
a run measures the defaults plus what the scenario sets.
"""

import contextlib
import json
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bench.vhosts import vhost
from services.stack.network import free_port
from services.stack.processes import Supervisor, Write
from services.stack.settings import StackSettings
from services.stack.up import StackOptions, StackPlan, open_stack, plan_stack, stop_on_signals
from shared.migrate import drop_database
from shared.settings import ApiSettings

API_TOKEN = "bench-e2e-api-token-3f9a61"
# The planner's events that time the audience and the dispatch; every other line only goes to
# the log file.
_PLANNER_EVENTS = ('"mailing.started"', '"audience.materialised"', '"dispatch.batch"')
_KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "TMPDIR")


@dataclass
class LogTally:
    """What the services wrote: lines and bytes per service, errors, the planner's events."""

    lines: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    planner_events: list[dict[str, Any]] = field(default_factory=list)

    def writer(self, sink: TextIO) -> Write:
        def write(line: str) -> None:
            print(line, file=sink)
            head, _, text = line.partition(" | ")
            name = head.rstrip()
            self.lines[name] += 1
            self.bytes[name] += len(text) + 1
            if '"level": "error"' in text or text.startswith("Traceback"):
                self.errors[name] += 1
            if name == "planner" and any(event in text for event in _PLANNER_EVENTS):
                with contextlib.suppress(ValueError):
                    self.planner_events.append(json.loads(text))

        return write


@dataclass
class BenchStack:
    """A running stack and where to reach it."""

    plan: StackPlan
    supervisor: Supervisor
    database_url: str
    vhost_url: str
    log_path: Path
    tally: LogTally

    @property
    def stub_url(self) -> str:
        if self.plan.stub_url is None:
            raise RuntimeError("the benchmark's stack always runs the stub")
        return self.plan.stub_url

    def service_pids(self) -> dict[str, int]:
        """Each running service's pid by name (the finished migrate child left out)."""
        return {
            child.spec.name: child.process.pid
            for child in self.supervisor.children
            if child.exit_code is None
        }


@contextlib.asynccontextmanager
async def bench_stack(
    *,
    admin_url: str,
    amqp_url: str,
    senders: int,
    settings: Mapping[str, str],
    log_path: Path,
) -> AsyncIterator[BenchStack]:
    """Migrate a new database (``mailer migrate`` creates it), start every service, wait until
    each is ready; stop them, drop the database and delete the vhost afterwards."""
    name = f"mailer_bench_{uuid.uuid4().hex[:10]}"
    database_url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    workdir = tempfile.TemporaryDirectory(prefix="mailer-bench-")
    with workdir as cwd, contextlib.chdir(cwd), vhost(amqp_url, name) as vhost_url:
        environ = {key: os.environ[key] for key in _KEPT_ENVIRONMENT if key in os.environ}
        environ |= {"MAILER_DATABASE_URL": database_url, "MAILER_RABBITMQ_URL": vhost_url}
        plan = _plan(senders, {**environ, **settings})
        tally = LogTally()
        with log_path.open("w", buffering=1 << 16, encoding="utf-8") as sink:
            supervisor = Supervisor(
                tally.writer(sink),
                own_name="bench",
                name_width=plan.name_width,
                stop_timeout_s=plan.stop_timeout_s,
            )
            try:
                # A Ctrl-C or SIGTERM stops the services (their own process groups never see a
                # terminal's signal), then the database and vhost go as after a finished run.
                with stop_on_signals(supervisor):
                    async with open_stack(plan, supervisor):
                        yield BenchStack(plan, supervisor, database_url, vhost_url, log_path, tally)
            finally:
                await drop_database(admin_url, name)


def _plan(senders: int, environ: Mapping[str, str]) -> StackPlan:
    api = ApiSettings(api_token=SecretStr(API_TOKEN), _env_file=None)
    options = StackOptions(senders, True, api_port=free_port(), stub_port=free_port())
    return plan_stack(options, api, StackSettings(_env_file=None), environ)

"""What ``mailer up`` runs: migrations, then every service as a child process, until stopped."""

import asyncio
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from services.stack.errors import StackError, StartFailed, StopRequested
from services.stack.network import free_port, reachable_host, wait_ready
from services.stack.processes import ChildSpec, Supervisor, Write
from services.stack.settings import StackSettings
from shared.settings import ApiSettings, ProviderSettings, load_settings

# Start order, and the reverse stop order: the API and the planner stop producing work
# first, then the senders drain theirs (calling the stub), then the status writer records
# the last results, and the stub goes last.
STUB_LAYER, STATUS_LAYER, SENDER_LAYER, FRONT_LAYER = range(4)
# The services without an HTTP server of their own, which serve /healthz and /readyz on
# MAILER_HEALTH_PORT: each child gets a port of its own, so that two senders never clash.
HEALTH_PORT = "MAILER_HEALTH_PORT"
_HEALTH_SERVED = ("planner", "sender", "status")


@dataclass(frozen=True)
class StackOptions:
    """What the command line chose; ``None`` ports mean the configured ones."""

    senders: int = 2
    stub: bool = True
    api_port: int | None = None
    stub_port: int | None = None


@dataclass(frozen=True)
class StackPlan:
    """The processes to run and where their HTTP endpoints will be."""

    migrate: ChildSpec
    services: tuple[ChildSpec, ...]
    api_url: str
    stub_url: str | None
    ready_timeout_s: float
    stop_timeout_s: float
    health_urls: dict[str, str] = field(default_factory=dict)
    """Base URL of each child's health server, by child name."""

    @property
    def name_width(self) -> int:
        return max(len(spec.name) for spec in (self.migrate, *self.services))


def mailer_command(name: str) -> list[str]:
    """The command line of ``mailer <name>``, run by this very interpreter."""
    return [sys.executable, "-m", "services.cli", name]


def load_plan(options: StackOptions, api: ApiSettings | None = None) -> StackPlan:
    """The plan over the configuration (environment and ``.env``); SettingsError if it is bad."""
    stack = load_settings(StackSettings)
    if api is None:
        api = load_settings(ApiSettings)
    if not options.stub:
        # Without the stub the senders need a real token: say so now, not in their logs.
        load_settings(ProviderSettings)
    return plan_stack(options, api, stack, os.environ)


def plan_stack(
    options: StackOptions, api: ApiSettings, stack: StackSettings, environ: Mapping[str, str]
) -> StackPlan:
    """Every child with the same environment: ``environ`` plus what this stack decides; only
    the health port differs, one free port per planner, sender and status child."""
    api_port = options.api_port or api.api_port
    env = {
        **{name: value for name, value in environ.items() if name != HEALTH_PORT},
        "PYTHONUNBUFFERED": "1",  # a line reaches the terminal when written, not when flushed
        "MAILER_API_PORT": str(api_port),
        "MAILER_API_TOKEN": api.api_token.get_secret_value(),
    }
    stub_url = None
    if options.stub:
        stub_port = options.stub_port or stack.stub_port
        stub_url = f"http://{reachable_host(stack.stub_host)}:{stub_port}"
        env.update(_stub_environment(stack, stub_port, stub_url))

    health_urls: dict[str, str] = {}

    def spec(name: str, layer: int, command: str = "") -> ChildSpec:
        command = command or name
        if command not in _HEALTH_SERVED:
            return ChildSpec(name, mailer_command(command), env, layer)
        port = free_port(stack.health_host)
        health_urls[name] = f"http://{reachable_host(stack.health_host)}:{port}"
        return ChildSpec(name, mailer_command(command), {**env, HEALTH_PORT: str(port)}, layer)

    services = [spec("stub", STUB_LAYER)] if options.stub else []
    services.append(spec("status", STATUS_LAYER))
    senders = range(1, options.senders + 1)
    services += [spec(f"sender-{n}", SENDER_LAYER, "sender") for n in senders]
    services += [spec("planner", FRONT_LAYER), spec("api", FRONT_LAYER)]
    return StackPlan(
        migrate=spec("migrate", 0),
        services=tuple(services),
        api_url=f"http://{reachable_host(api.api_host)}:{api_port}",
        stub_url=stub_url,
        ready_timeout_s=stack.stack_ready_timeout_s,
        stop_timeout_s=stack.stack_stop_timeout_s,
        health_urls=health_urls,
    )


def _stub_environment(stack: StackSettings, port: int, url: str) -> dict[str, str]:
    """Senders call the stub, and both have one token, picked in the stub's own order:
    ``MAILER_STUB_TOKEN``, else the provider token, else a random one."""
    configured = stack.stub_token or stack.provider_token
    token = configured.get_secret_value() if configured else secrets.token_urlsafe(24)
    return {
        "MAILER_STUB_PORT": str(port),
        "MAILER_PROVIDER_URL": f"{url}/v1",
        "MAILER_PROVIDER_TOKEN": token,
        "MAILER_STUB_TOKEN": token,
    }


@asynccontextmanager
async def open_stack(plan: StackPlan, supervisor: Supervisor) -> AsyncIterator[None]:
    """Migrate, start every service and wait until they answer; stop them all on the way out."""
    try:
        exit_code = await supervisor.run(plan.migrate)
        if exit_code != 0:
            raise StartFailed(f"migrations failed with exit code {exit_code}; see migrate's lines")
        for spec in sorted(plan.services, key=lambda spec: spec.layer):
            await supervisor.start(spec)
        await supervisor.guard(_ready(plan))
        yield
    finally:
        await supervisor.stop()


async def _ready(plan: StackPlan) -> None:
    probes = [wait_ready("the API", f"{plan.api_url}/readyz", plan.ready_timeout_s)]
    if plan.stub_url is not None:
        probes.append(wait_ready("the stub", f"{plan.stub_url}/healthz", plan.ready_timeout_s))
    probes += [
        wait_ready(name, f"{url}/readyz", plan.ready_timeout_s)
        for name, url in plan.health_urls.items()
    ]
    await asyncio.gather(*probes)


@contextmanager
def stop_on_signals(supervisor: Supervisor) -> Iterator[None]:
    """While inside, SIGINT or SIGTERM stops the stack gracefully; a second one kills it."""

    def on_signal() -> None:
        if supervisor.stop_requested:
            supervisor.say("second signal: killing every service")
            supervisor.kill_all()
            return
        supervisor.say("stopping every service (a second Ctrl-C kills them)")
        supervisor.request_stop()

    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, on_signal)
    try:
        yield
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def run(options: StackOptions) -> int:
    """``mailer up``: run the stack until a signal (exit code 0) or a service dies (1)."""
    plan = load_plan(options)
    return asyncio.run(_up(plan, _print_line))


async def _up(plan: StackPlan, write: Write) -> int:
    supervisor = Supervisor(
        write, own_name="up", name_width=plan.name_width, stop_timeout_s=plan.stop_timeout_s
    )
    try:
        with stop_on_signals(supervisor):
            async with open_stack(plan, supervisor):
                supervisor.say(_describe(plan))
                forever = asyncio.get_running_loop().create_future()
                await supervisor.guard(forever)  # until a signal or a death
    except StopRequested:
        supervisor.say("stopped")
        return 0
    except StackError as exc:
        supervisor.say(f"stopped after an error: {exc}")
        return 1
    return 0  # not reached: only a stop or a failure ends the wait


def _describe(plan: StackPlan) -> str:
    senders = sum(spec.name.startswith("sender-") for spec in plan.services)
    stub = f", provider stub at {plan.stub_url}" if plan.stub_url else ""
    probes = ", ".join(f"{name} {url}/readyz" for name, url in plan.health_urls.items())
    readiness = f"; readiness at {probes}" if probes else ""
    return (
        f"ready: API at {plan.api_url} (docs {plan.api_url}/docs), {senders} sender(s){stub}"
        f"{readiness}; Ctrl-C stops every service"
    )


def _print_line(line: str) -> None:
    print(line, flush=True)

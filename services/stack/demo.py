"""``mailer demo``: a stack, realistic clients, one mailing to all of them, watched to the end."""

import asyncio
import random
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr, ValidationError
from rich.console import Console

from services.stack.errors import DemoFailed, StackError, StopRequested
from services.stack.network import free_port, wait_ready
from services.stack.processes import Supervisor
from services.stack.report import DemoResult, demo_console, follow_mailing, print_report
from services.stack.seed import DemoClient, copy_clients, demo_clients, demo_tags
from services.stack.settings import StackSettings
from services.stack.up import StackOptions, StackPlan, load_plan, open_stack, stop_on_signals
from shared.settings import ApiSettings, DatabaseSettings, load_settings

# Russian on purpose (with quotes of both kinds and emoji): a text is sent byte for byte.
TEXT = (
    'Привет! «Весенняя распродажа» — скидка 20 % на всё до воскресенья 🌷🎉 Код "SPRING-20". '
    "Не хотите получать SMS? Ответьте СТОП."  # noqa: RUF001 - Cyrillic, not look-alikes
)
FINISH_GRACE_S = 90.0
"""After ``end_at``, how long the demo waits for the planner to expire what is left."""
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DemoOptions:
    """What the command line chose."""

    clients: int = 10_000
    senders: int = 2
    latency_ms: int = 0
    error_rate: float = 0.0
    minutes: float = 10.0
    api_url: str | None = None
    """A running stack's API; None brings a stack up on free ports for the demo."""
    stub_url: str | None = None
    """The running stack's stub; with ``api_url`` and None, the configured one if it answers."""
    log_file: Path | None = None


@dataclass(frozen=True)
class Target:
    """The stack the demo talks to."""

    api_url: str
    api_token: str
    stub_url: str | None


def run(options: DemoOptions) -> int:
    """``mailer demo``: 0 when the mailing finished with consistent figures, else 1."""
    database = load_settings(DatabaseSettings)
    api = _api_settings(own_stack=options.api_url is None)
    plan = None
    if options.api_url is None:
        stack = StackOptions(options.senders, True, api_port=free_port(), stub_port=free_port())
        plan = load_plan(stack, api)
    log_path = options.log_file or Path(tempfile.gettempdir()) / f"mailer-demo-{_stamp()}.log"
    return asyncio.run(_demo(options, plan, api, database.database_url, log_path))


def _api_settings(*, own_stack: bool) -> ApiSettings:
    if own_stack and load_settings(StackSettings).api_token is None:
        # The demo's own stack, and no token configured: its API gets a random one.
        with suppress(ValidationError):  # else another setting is bad: load_settings names it
            return ApiSettings(api_token=SecretStr(secrets.token_urlsafe(24)))
    return load_settings(ApiSettings)


async def _demo(
    options: DemoOptions, plan: StackPlan | None, api: ApiSettings, database_url: str, log: Path
) -> int:
    console = demo_console()
    with log.open("a", buffering=1, encoding="utf-8") as sink:
        width = plan.name_width if plan else 8
        supervisor = Supervisor(
            lambda line: print(line, file=sink),
            own_name="demo",
            name_width=width,
            stop_timeout_s=plan.stop_timeout_s if plan else 1.0,
        )
        try:
            with stop_on_signals(supervisor):
                async with _target(options, plan, api, supervisor, console, log) as target:
                    work = _mailing(target, options, database_url, console)
                    result = await supervisor.guard(work)
        except StopRequested:
            console.print("demo stopped")
            return 130
        except (StackError, httpx.HTTPError) as exc:
            reason = exc if isinstance(exc, StackError) else f"{type(exc).__name__}: {exc}"
            console.print(f"[bold red]demo failed:[/bold red] {reason} (service logs: {log})")
            return 1
    return 1 if print_report(result, console) else 0


@asynccontextmanager
async def _target(
    options: DemoOptions,
    plan: StackPlan | None,
    api: ApiSettings,
    supervisor: Supervisor,
    console: Console,
    log: Path,
) -> AsyncIterator[Target]:
    token = api.api_token.get_secret_value()
    if plan is None:  # a running stack was named
        api_url = str(options.api_url).rstrip("/")
        yield Target(api_url, token, await _running_stub(options))
        return
    console.print(f"starting the stack ({options.senders} senders, stub); service logs: {log}")
    started = time.monotonic()
    async with open_stack(plan, supervisor):
        console.print(f"stack ready in {time.monotonic() - started:.1f} s: API at {plan.api_url}")
        try:
            yield Target(plan.api_url, token, plan.stub_url)
        finally:
            console.print("stopping the stack")
    console.print("stack stopped")


async def _running_stub(options: DemoOptions) -> str | None:
    """The stub of a running stack, or None (no latency set, no stub summary) if it is silent."""
    if options.stub_url is not None:
        return options.stub_url.rstrip("/")
    stack = load_settings(StackSettings)
    url = f"http://127.0.0.1:{stack.stub_port}"
    try:
        await wait_ready("the stub", f"{url}/healthz", timeout_s=1.0)
    except StackError:
        return None
    return url


async def _mailing(
    target: Target, options: DemoOptions, database_url: str, console: Console
) -> DemoResult:
    auth = {"Authorization": f"Bearer {target.api_token}"}
    api = httpx.AsyncClient(base_url=target.api_url, headers=auth, timeout=REQUEST_TIMEOUT_S)
    async with api, _stub_client(target.stub_url) as stub:
        if stub is not None:
            await _prepare_stub(stub, options)
        run_id = secrets.token_hex(3)
        started = time.monotonic()
        seeded = await copy_clients(database_url, _clients(options.clients, run_id))
        seed_s = time.monotonic() - started
        console.print(f"seeded {seeded:,} clients tagged {', '.join(demo_tags(run_id))}")
        mailing = await _create_mailing(api, run_id, options.minutes)
        started = time.monotonic()
        deadline_s = options.minutes * 60 + FINISH_GRACE_S
        try:
            mailing = await follow_mailing(api, mailing["id"], seeded, deadline_s, console)
        except (asyncio.CancelledError, DemoFailed):
            # Interrupted or stuck: leave no mailing behind that the next stack would resume.
            await _cancel(api, mailing["id"], console)
            raise
        delivery_s = time.monotonic() - started
        summary = await _summary(stub)
    return DemoResult(mailing, seeded, seed_s, delivery_s, summary)


def _clients(count: int, run_id: str) -> list[DemoClient]:
    rng = random.Random()  # noqa: S311 - demo data, not secrets
    return demo_clients(count, run_id, rng)


@asynccontextmanager
async def _stub_client(url: str | None) -> AsyncIterator[httpx.AsyncClient | None]:
    if url is None:
        yield None
        return
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        yield client


async def _prepare_stub(stub: httpx.AsyncClient, options: DemoOptions) -> None:
    """A clean journal, so that the summary counts this demo only, and the chosen faults."""
    behaviour = {"latency_ms": options.latency_ms, "error_rate": options.error_rate}
    for response in (
        await stub.delete("/_stub/journal"),
        await stub.put("/_stub/behaviour", json=behaviour),
    ):
        if response.is_error:
            raise DemoFailed(f"the stub refused {response.request.url.path}: {response.text[:200]}")


async def _create_mailing(api: httpx.AsyncClient, run_id: str, minutes: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    body = {
        "start_at": now.isoformat(),
        "end_at": (now + timedelta(minutes=minutes)).isoformat(),
        "text": TEXT,
        "filter": {"tags": demo_tags(run_id)},
    }
    response = await api.post("/api/v1/mailings", json=body)
    if response.status_code != httpx.codes.CREATED:
        raise DemoFailed(f"creating the mailing answered {response.status_code}: {response.text}")
    mailing: dict[str, Any] = response.json()
    return mailing


async def _cancel(api: httpx.AsyncClient, mailing_id: int, console: Console) -> None:
    try:
        response = await api.post(f"/api/v1/mailings/{mailing_id}/cancel")
    except httpx.HTTPError as exc:
        console.print(f"could not cancel mailing {mailing_id}: {type(exc).__name__}")
        return
    console.print(f"mailing {mailing_id} cancelled: answered {response.status_code}")


async def _summary(stub: httpx.AsyncClient | None) -> dict[str, Any] | None:
    if stub is None:
        return None
    response = await stub.get("/_stub/summary")
    if response.is_error:
        raise DemoFailed(f"the stub's summary answered {response.status_code}")
    summary: dict[str, Any] = response.json()
    return summary


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

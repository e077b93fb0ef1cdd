"""Readiness over a service's checks: outcomes by name, bounded, flips logged once."""

import asyncio

from structlog.testing import capture_logs

from shared.health import Readiness


class Switch:
    """A check whose answer the test sets."""

    def __init__(self) -> None:
        self.reason: str | None = None

    async def __call__(self) -> str | None:
        return self.reason


async def test_each_check_is_named_with_ok_or_its_reason() -> None:
    broken = Switch()
    broken.reason = "connection down: rabbitmq"

    async def raising() -> str | None:
        raise ConnectionResetError("peer reset, password=hunter2")

    readiness = Readiness({"fine": Switch(), "broker": broken, "database": raising}, 1.0)

    assert await readiness.evaluate() == {
        "fine": "ok",
        "broker": "connection down: rabbitmq",
        # The type only: an exception's text may hold a URL with its password.
        "database": "failed: ConnectionResetError",
    }


async def test_a_check_without_an_answer_fails_at_the_timeout() -> None:
    async def hanging() -> str | None:
        await asyncio.Event().wait()
        return None

    readiness = Readiness({"database": hanging}, 0.05)

    assert await readiness.evaluate() == {"database": "no answer within 0.05 s"}


async def test_a_flip_is_logged_once_each_way_not_on_every_run() -> None:
    consumer = Switch()
    readiness = Readiness({"consumer:mailer.work": consumer}, 1.0)

    with capture_logs() as logs:
        await readiness.evaluate()
        consumer.reason = "the broker counts no consumer on the queue"
        for _ in range(3):
            await readiness.evaluate()
        consumer.reason = None
        for _ in range(3):
            await readiness.evaluate()

    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("readiness.lost", "warning"),
        ("readiness.restored", "info"),
    ]
    assert logs[0]["failing"] == {
        "consumer:mailer.work": "the broker counts no consumer on the queue"
    }


async def test_probes_at_the_same_time_share_one_run_of_the_checks() -> None:
    runs = 0
    release = asyncio.Event()

    async def slow() -> str | None:
        nonlocal runs
        runs += 1
        await release.wait()
        return None

    readiness = Readiness({"slow": slow}, 5.0)
    probes = [asyncio.create_task(readiness.evaluate()) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()

    assert await asyncio.gather(*probes) == [{"slow": "ok"}] * 5
    assert runs == 1

"""A sender's ``/healthz`` and ``/readyz``: up, ready, and not ready for a lost consumer or an
unreachable database."""

from sqlalchemy.engine import make_url

from services.sender import app
from shared import topology
from shared.broker import BrokerError
from shared.messages import Work
from tests.conftest import _ctl
from tests.probes import health_settings, lose_consumer, probe, readiness_until
from tests.sender.helpers import Pipeline
from tests.sender.helpers import config as _config
from tests.status.helpers import ready_count
from tests.waiting import eventually

CONSUMER = f"consumer:{topology.WORK_QUEUE}"
READY = {"broker": "ok", CONSUMER: "ok", "database": "ok"}


async def _published(pipeline: Pipeline, works: list[Work]) -> bool:
    try:
        await pipeline.publish(*works)
    except BrokerError:
        return False
    return True


async def test_a_running_sender_is_up_and_ready_and_stays_so_while_it_works(
    pipeline: Pipeline,
) -> None:
    works = await pipeline.messages(3)
    health = health_settings()

    async with pipeline.sender(health):
        assert await probe(health, "/healthz") == (200, {"status": "ok"})
        assert await probe(health, "/readyz") == (200, {"status": "ok", "checks": READY})
        await pipeline.publish(*works)
        ids = {work.message_id for work in works}
        await pipeline.results.wait_until(lambda: ids <= pipeline.results.final().keys(), 10)

        assert await probe(health, "/readyz") == (200, {"status": "ok", "checks": READY})


async def test_a_lost_consumer_makes_it_not_ready_while_its_connections_stay(
    pipeline: Pipeline,
) -> None:
    works = await pipeline.messages(5)
    health = health_settings()

    async with pipeline.sender(health) as running:
        await readiness_until(health, 200)
        queue, tag = running.consumer.queue, running.consumer.consumer_tag
        assert queue is not None
        assert tag is not None
        await lose_consumer(queue.channel, tag)
        await pipeline.publish(*works)
        waiting = await eventually(
            lambda: ready_count(pipeline.connection, topology.WORK_QUEUE), lambda n: n == 5
        )

        body = await readiness_until(health, 503)

    assert waiting == 5  # nobody took them: the consumer is really gone
    assert body == {
        "status": "unavailable",
        "checks": {**READY, CONSUMER: "the broker counts no consumer on the queue"},
    }


async def test_an_unreachable_database_makes_it_not_ready(
    pipeline: Pipeline, database_url: str, vhost_url: str, stub_url: str
) -> None:
    nowhere = make_url(database_url).set(port=1).render_as_string(hide_password=False)
    health = health_settings()

    async with app.running(_config(nowhere, vhost_url, stub_url, health)):
        body = await readiness_until(health, 503)
        assert await probe(health, "/healthz") == (200, {"status": "ok"})

    assert body["checks"]["database"].startswith("unavailable: "), body
    assert {name: outcome for name, outcome in body["checks"].items() if name != "database"} == {
        "broker": "ok",
        CONSUMER: "ok",
    }


async def test_after_its_connections_are_closed_it_is_ready_again_only_once_it_consumes(
    pipeline: Pipeline, vhost_url: str
) -> None:
    """The broker drops every connection of the vhost (as a restart does): readiness comes
    back once both connections are up again and work is taken again."""
    health = health_settings()
    works = await pipeline.messages(3)

    async with pipeline.sender(health):
        await readiness_until(health, 200)
        _ctl("close_all_connections", "--vhost", vhost_url.rsplit("/", 1)[1], "by a test")
        lost = await readiness_until(health, 503)
        back = await readiness_until(health, 200, timeout_s=30)
        # The test's own connection was closed too: it comes back by itself, a moment apart.
        await eventually(lambda: _published(pipeline, works), bool, 30, 0.2)
        ids = {work.message_id for work in works}
        await pipeline.results.wait_until(lambda: ids <= pipeline.results.final().keys(), 20)

    assert lost["checks"]["broker"].startswith("connection down: "), lost
    assert back == {"status": "ok", "checks": READY}

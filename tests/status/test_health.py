"""The status service's ``/healthz`` and ``/readyz``: up, ready, and not ready for a lost
consumer or an unreachable database."""

import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from sqlalchemy.engine import make_url

from shared import topology
from shared.broker import Publisher
from shared.logs import ConnectionLossFilter
from tests.conftest import _ctl
from tests.probes import health_settings, lose_consumer, probe, readiness_until
from tests.status.conftest import StartStatus
from tests.status.helpers import publish, ready_count, sent
from tests.waiting import eventually

RESULTS = f"consumer:{topology.RESULTS_QUEUE}"
DEAD_WORK = f"consumer:{topology.WORK_DEAD_QUEUE}"


async def _hold(_delivery: AbstractIncomingMessage) -> None:
    """Never acks: a consumer with a prefetch of one then holds one message and takes no more."""


async def test_a_running_status_service_is_up_and_ready(start_status: StartStatus) -> None:
    health = health_settings()
    await start_status(health=health)

    assert await probe(health, "/healthz") == (200, {"status": "ok"})
    assert await probe(health, "/readyz") == (
        200,
        {
            "status": "ok",
            "checks": {"broker": "ok", RESULTS: "ok", DEAD_WORK: "ok", "database": "ok"},
        },
    )


async def test_a_lost_results_consumer_makes_it_not_ready_while_connected(
    start_status: StartStatus, publisher: Publisher, amqp: AbstractRobustConnection
) -> None:
    health = health_settings()
    service = await start_status(health=health)
    await readiness_until(health, 200)
    queue, tag = service.consumers[0]
    assert queue.name == topology.RESULTS_QUEUE

    await lose_consumer(queue.channel, tag)
    await publish(publisher, *(sent(message_id) for message_id in range(1, 6)))
    await eventually(lambda: ready_count(amqp, topology.RESULTS_QUEUE), lambda n: n == 5)

    body = await readiness_until(health, 503)
    assert body["status"] == "unavailable"
    assert body["checks"] == {
        "broker": "ok",
        RESULTS: "the broker counts no consumer on the queue",
        DEAD_WORK: "ok",
        "database": "ok",
    }
    assert service.connection.connected.is_set()


async def test_a_lost_consumer_beside_a_live_one_is_seen_once_messages_wait_for_it(
    start_status: StartStatus, publisher: Publisher, amqp: AbstractRobustConnection
) -> None:
    """Another consumer on the queue (a second replica, here one that holds a message and
    takes no more) keeps the broker's count above zero: the waiting messages tell."""
    health = health_settings(health_consumer_stall_s=1.0)
    service = await start_status(health=health)
    queue, tag = service.consumers[0]
    channel = await amqp.channel()
    await channel.set_qos(prefetch_count=1)
    other = await channel.declare_queue(topology.RESULTS_QUEUE, passive=True)
    # The other consumer first: the checks run from the start, and one that ran while the
    # queue had no consumer at all would answer for the wrong reason.
    await other.consume(_hold)
    await lose_consumer(queue.channel, tag)
    await publish(publisher, *(sent(message_id) for message_id in range(1, 6)))

    body = await readiness_until(health, 503)

    reason = body["checks"][RESULTS]
    assert reason.startswith("no delivery for "), reason
    assert reason.endswith(" while 4 messages wait and 0 of 2000 are in flight"), reason
    await channel.close()


async def test_an_unreachable_database_makes_it_not_ready(
    start_status: StartStatus, database_url: str
) -> None:
    nowhere = make_url(database_url).set(port=1).render_as_string(hide_password=False)
    health = health_settings()
    await start_status(database_url=nowhere, health=health)

    body = await readiness_until(health, 503)

    assert body["checks"]["database"].startswith("unavailable: "), body
    assert {name: outcome for name, outcome in body["checks"].items() if name != "database"} == {
        "broker": "ok",
        RESULTS: "ok",
        DEAD_WORK: "ok",
    }
    assert await probe(health, "/healthz") == (200, {"status": "ok"})


async def test_a_closed_connection_is_not_ready_until_it_and_its_consumers_are_back(
    start_status: StartStatus, vhost_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    health = health_settings()
    await start_status(health=health)
    await readiness_until(health, 200)
    vhost = vhost_url.rsplit("/", 1)[1]

    # Only this test's vhost: other tests and engineers share the broker.
    _ctl("close_all_connections", "--vhost", vhost, "closed by a readiness test")
    lost = await readiness_until(health, 503)
    back = await readiness_until(health, 200, timeout_s=30)

    assert lost["checks"]["broker"] == "connection down: rabbitmq"
    assert back["checks"] == {"broker": "ok", RESULTS: "ok", DEAD_WORK: "ok", "database": "ok"}
    # As an operator reads them: the logging set-up drops a lost connection's tracebacks.
    for record in caplog.records:
        ConnectionLossFilter().filter(record)
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []

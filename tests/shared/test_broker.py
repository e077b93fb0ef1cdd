"""The publisher's look at a queue's depth: an answer, or a quick BrokerError, never a hang."""

import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from shared import topology
from shared.broker import READY_TIMEOUT_S, BrokerError, Publisher, connect
from shared.messages import Result
from shared.statuses import MessageStatus
from tests.status.helpers import Link

RESULT = Result(message_id=1, status=MessageStatus.SENT, attempts=1)


def _through(link: Link, url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"guest:guest@127.0.0.1:{link.port}"))


async def test_the_depth_counts_what_waits_and_a_missing_queue_is_named(vhost_url: str) -> None:
    connection = await connect(vhost_url)
    async with connection:
        publisher = await Publisher.open(connection)
        await publisher.publish(topology.RESULTS_EXCHANGE, topology.RESULTS_ROUTING_KEY, RESULT)

        assert await publisher.ready_count(topology.RESULTS_QUEUE) == 1
        with pytest.raises(BrokerError, match=r"queue mailer\.nowhere does not exist"):
            await publisher.ready_count("mailer.nowhere")
        # The missing queue closed a channel of its own, not the publishing one.
        await publisher.publish(topology.RESULTS_EXCHANGE, topology.RESULTS_ROUTING_KEY, RESULT)
        assert await publisher.ready_count(topology.RESULTS_QUEUE) == 2


async def test_without_the_broker_the_depth_fails_at_once_instead_of_waiting(
    vhost_url: str,
) -> None:
    link = Link("127.0.0.1", 5672)
    await link.open()
    connection = await connect(_through(link, vhost_url))
    try:
        publisher = await Publisher.open(connection)
        assert await publisher.ready_count(topology.WORK_QUEUE) == 0

        await link.cut()
        started = time.monotonic()
        with pytest.raises(BrokerError, match="broker unavailable"):
            await publisher.ready_count(topology.WORK_QUEUE)

        assert time.monotonic() - started < READY_TIMEOUT_S + 1
    finally:
        await link.open()
        await connection.close()

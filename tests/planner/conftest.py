"""A real publisher on a vhost of the test's own, for the tests that read the work queue."""

from collections.abc import AsyncIterator

import pytest

from shared.broker import Publisher, connect


@pytest.fixture
async def publisher(vhost_url: str) -> AsyncIterator[Publisher]:
    """A confirmed publisher on the test's vhost, topology declared."""
    connection = await connect(vhost_url)
    yield await Publisher.open(connection)
    await connection.close()

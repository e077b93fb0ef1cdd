"""A message the provider fails three ways is sent on the fourth request, under one msgId."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.stack.demo import TEXT
from tests.e2e.helpers import Api, Stub, next_message_id, seed
from tests.e2e.stack import Stack

SCRIPT = ["503", "not-json", "drop", "ok"]
# The msgId is only known once the planner materialises the message, and it dispatches in the
# same tick: the next ids of the sequence are scripted beforehand instead.
SCRIPTED_IDS = 5


async def test_503_not_json_drop_then_ok_is_sent_after_exactly_four_requests(
    stack: Stack, stack_engine: AsyncEngine, api: Api, stub: Stub
) -> None:
    run_id, [client] = await seed(stack.database_url, 1)
    first_id = await next_message_id(stack_engine)
    for msg_id in range(first_id, first_id + SCRIPTED_IDS):
        await stub.script(msg_id, SCRIPT)

    created = await api.create_mailing(run_id)
    mailing = await api.settled(created["id"], 60)
    [message] = await api.messages(created["id"])
    journal = await stub.journal()
    async with stack_engine.connect() as connection:
        stored = (
            await connection.execute(
                text("SELECT status, attempts, sent_at FROM messages WHERE id = :id"),
                {"id": message["id"]},
            )
        ).one()

    assert message["id"] in range(first_id, first_id + SCRIPTED_IDS)
    assert [entry["outcome"] for entry in journal] == SCRIPT
    assert {entry["msg_id"] for entry in journal} == {message["id"]}
    body = {"id": message["id"], "phone": int(client.phone), "text": TEXT}
    assert [entry["body"] for entry in journal] == [body] * len(SCRIPT)
    assert [entry["client_disconnected"] for entry in journal] == [False, False, True, False]
    assert (stored.status, stored.attempts) == ("sent", 4)
    assert stored.sent_at is not None
    assert (message["status"], message["attempts"]) == ("sent", 4)
    assert mailing["stats"]["by_status"]["sent"] == 1

"""SPEC §5 judged from outside: the stub's journal, the database and the broker, nothing else."""

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from tests.e2e.helpers import clients_matching, instant, messages_per_client, successes
from tests.faults.conftest import Scene

FINAL = {"sent", "failed", "expired", "cancelled"}


@dataclass(frozen=True)
class Figures:
    """One scenario's row of the table in the closing note."""

    messages: int
    lost: int
    """Messages not final at the end."""
    late_requests: int
    """Requests at or after the mailing's end_at."""
    duplicate_successes: int
    recover_s: float | None = None
    """From the end of the fault to the first success after it."""
    cut_at_deadline: int = 0
    """Expired messages whose request the stub answered as the deadline cut it off."""


def report(scenario: str, figures: Figures) -> None:
    """One line per scenario for the summary (``pytest -s tests/faults``)."""
    print(f"\nfaults | {scenario} | {figures}")


async def judge(
    scene: Scene,
    mailing_id: int,
    run_id: str,
    fault_ended_at: float | None = None,
    *,
    in_flight_at_end_s: float = 0.0,
) -> Figures:
    """Check what must hold whatever the fault; return the figures that depend on it.

    ``in_flight_at_end_s``: how long a call takes, for a mailing whose deadline came while
    calls were in flight. The sender's timeout cuts such a call off at ``end_at`` and the
    message expires, but the stub may answer in the same few milliseconds and not yet know
    that the client left: its journal then shows a success nobody received.
    """
    mailing = await scene.api.mailing(mailing_id)
    messages = await scene.api.messages(mailing_id)
    journal = await scene.stub.journal()
    audience = await clients_matching(scene.engine, run_id)
    ids = {message["id"] for message in messages}

    # Audience: exactly one Message per matching client.
    assert await messages_per_client(scene.engine, mailing_id) == dict.fromkeys(audience, 1)
    # No duplicates: every request names a message of the mailing, with one body per msgId.
    mine = [entry for entry in journal if entry["msg_id"] in ids]
    assert {entry["msg_id"] for entry in journal} <= ids, "a request for an id no message has"
    bodies = {entry["msg_id"]: set() for entry in mine}
    for entry in mine:
        bodies[entry["msg_id"]].add(json.dumps(entry["body"], sort_keys=True))
    assert all(len(found) == 1 for found in bodies.values()), "one msgId, several bodies"
    # Consistent statistics: counts add up, and sent is what the provider confirmed.
    succeeded = successes(mine)
    stats = mailing["stats"]
    assert stats["total"] == sum(stats["by_status"].values()) == len(messages)
    sent = {message["id"] for message in messages if message["status"] == "sent"}
    end_at = instant(mailing["end_at"])
    cut = {
        message["id"]
        for message in messages
        if message["status"] == "expired"
        and message["id"] in succeeded
        and all(
            end_at - in_flight_at_end_s <= instant(e["received_at"]) < end_at
            for e in mine
            if e["msg_id"] == message["id"] and e["outcome"] == "ok"
        )
    }
    differing = {
        message["id"]: (message["status"], [e for e in mine if e["msg_id"] == message["id"]])
        for message in messages
        if (message["id"] in sent) != (message["id"] in succeeded) and message["id"] not in cut
    }
    assert not differing, (
        f"sent differs from the provider's successes (end_at {end_at}): {differing}"
    )
    after = sorted(
        instant(entry["received_at"])
        for entry in mine
        if entry["outcome"] == "ok"
        and fault_ended_at is not None
        and instant(entry["received_at"]) >= fault_ended_at
    )
    return Figures(
        messages=len(messages),
        lost=sum(message["status"] not in FINAL for message in messages),
        late_requests=sum(instant(entry["received_at"]) >= end_at for entry in mine),
        duplicate_successes=sum(count - 1 for count in succeeded.values()),
        recover_s=round(after[0] - fault_ended_at, 2) if after and fault_ended_at else None,
        cut_at_deadline=len(cut),
    )


async def statuses(scene: Scene, mailing_id: int) -> Counter[str]:
    query = text("SELECT status, count(*) AS n FROM messages WHERE mailing_id = :id GROUP BY 1")
    async with scene.engine.connect() as connection:
        rows = (await connection.execute(query, {"id": mailing_id})).all()
    return Counter({row.status: row.n for row in rows})


def tracebacks(scene: Scene, *names: str) -> list[str]:
    """Lines of the named processes that carry a Python traceback."""
    found: list[str] = []
    for name in names:
        found += [json.dumps(event) for event in scene.stack.events(name) if _has_traceback(event)]
    return found


def _has_traceback(event: dict[str, Any]) -> bool:
    return "exception" in event or "Traceback" in json.dumps(event)

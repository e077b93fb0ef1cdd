"""The bodies that travel through RabbitMQ, one schema each, shared by producer and consumer.

JSON, validated on the way in: a body that does not parse is poison and is dead-lettered, never
retried for ever.
"""

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.statuses import MessageStatus


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Work(_Body):
    """One provider call to make: planner → sender, and sender → retry queue → sender."""

    message_id: int = Field(description="The provider's msgId; the same on every attempt.")
    mailing_id: int
    client_id: int
    phone: str
    text: str
    deadline_at: AwareDatetime = Field(description="The mailing's end_at when dispatched.")
    attempt: int = Field(default=1, ge=1, description="1 for the first call, 2 for the next…")
    last_error: str | None = None
    dispatch: int = Field(
        default=1, ge=1, description="Which dispatch of the message by the planner this is."
    )
    dispatch_xid: int | None = Field(
        default=None,
        description="The planner transaction that published this copy. Sent only once the "
        "message's row names the same transaction, i.e. it committed; None (a work message "
        "from before the field existed) is not checked.",
    )


class Result(_Body):
    """What became of a message, or of one attempt of it: sender → status."""

    message_id: int
    status: MessageStatus = Field(
        description="A final status; ``queued`` for an attempt that will be retried; "
        "``pending`` for a message back to wait for its send window."
    )
    attempts: int = Field(ge=0, description="Provider calls made so far.")
    last_error: str | None = None
    sent_at: datetime | None = None
    dispatch: int | None = Field(
        default=None,
        description="With ``pending``: the dispatch it undoes; a later one is left alone.",
    )


MAX_RESULTS_PER_BATCH = 100
"""Results one body may hold: with the status service's prefetch, it bounds what that
service holds (2,000 deliveries of at most 100 results, about 20 MB of bodies)."""


class ResultBatch(_Body):
    """Several results in one body: sender → status, one publish and one confirm for all.

    The results of one message keep the order they were reported in. The status service also
    reads a lone :class:`Result` body, as senders from before batches publish them.
    """

    results: list[Result] = Field(min_length=1, max_length=MAX_RESULTS_PER_BATCH)


class ControlEvent(_Body):
    """A change to a mailing or client that running replicas should act on at once."""

    kind: Literal["mailing_created", "mailing_changed", "mailing_cancelled", "mailing_deleted",
                  "client_deleted"]  # fmt: skip
    mailing_id: int | None = None
    client_id: int | None = None

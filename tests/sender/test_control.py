"""Control events: which mailings a sender learns are stopped, without asking the database."""

from types import SimpleNamespace

from services.sender.control import ControlListener
from services.sender.logic import Gate
from shared.messages import ControlEvent


async def _hear(listener: ControlListener, body: bytes) -> None:
    await listener.on_event(SimpleNamespace(body=body))  # type: ignore[arg-type]


async def test_cancelled_and_deleted_mailings_are_remembered() -> None:
    listener = ControlListener()
    for event in (
        ControlEvent(kind="mailing_cancelled", mailing_id=1),
        ControlEvent(kind="mailing_cancelled", mailing_id=2),
        ControlEvent(kind="mailing_deleted", mailing_id=2),
        ControlEvent(kind="mailing_changed", mailing_id=3),
        ControlEvent(kind="client_deleted", client_id=4),
    ):
        await _hear(listener, event.model_dump_json().encode())

    assert [listener.stopped(i) for i in (1, 2, 3, 4)] == [Gate.CANCEL, Gate.DELETED, None, None]


async def test_an_unreadable_event_is_ignored() -> None:
    listener = ControlListener()
    await _hear(listener, b"{not json")
    await _hear(listener, b'{"kind": "mailing_exploded", "mailing_id": 1}')
    assert listener.stopped(1) is None

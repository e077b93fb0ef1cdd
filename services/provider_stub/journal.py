"""The stub's memory of what it received: a bounded journal and exact counters.

Memory stays flat over a million-request run: the journal keeps only the newest entries
(``MAILER_STUB_JOURNAL_SIZE``), while the summary's counters are exact for the whole run, the
per-id ones kept in bitmaps (:class:`IdSet`).
"""

from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.provider_stub.ids import IdSet
from services.provider_stub.outcomes import OK

# Texts of one mailing are all the same: keep one copy of each, up to this many distinct ones.
_MAX_SHARED_TEXTS = 1024


@dataclass(slots=True)
class Entry:
    """One request, as the journal shows it."""

    received_at: float
    msg_id: int | None
    body: Any
    authorized: bool
    outcome: str = ""
    client_disconnected: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "received_at": datetime.fromtimestamp(self.received_at, UTC).isoformat(),
            "msg_id": self.msg_id,
            "body": self.body,
            "authorized": self.authorized,
            "outcome": self.outcome,
            "client_disconnected": self.client_disconnected,
        }


class Journal:
    """Every request, its outcome, and the counts of SPEC §4.1's summary."""

    def __init__(self, max_entries: int) -> None:
        self._entries: deque[Entry] = deque(maxlen=max_entries)
        self._texts: dict[str, str] = {}
        self.clear()

    def clear(self) -> None:
        self._entries.clear()
        self._texts.clear()
        self.requests = 0
        self.successes = 0
        self.duplicate_successes = 0
        self.by_outcome: Counter[str] = Counter()
        self._seen = IdSet()
        self._succeeded = IdSet()

    def receive(self, received_at: float, msg_id: int | None, body: Any, authorized: bool) -> Entry:
        """Journal a request as it arrives; :meth:`settle` completes it."""
        if isinstance(body, dict) and isinstance(body.get("text"), str):
            body["text"] = self._shared_text(body["text"])
        entry = Entry(received_at, msg_id, body, authorized)
        self._entries.append(entry)
        self.requests += 1
        if msg_id is not None:
            self._seen.add(msg_id)
        return entry

    def settle(self, entry: Entry, outcome: str, *, answered: bool) -> None:
        """Record how the request ended; ``answered`` is False when the client left first.

        A success counts only when the client received it: a client that gave up never
        learned that the message went through.
        """
        entry.outcome = outcome
        entry.client_disconnected = not answered
        self.by_outcome[outcome] += 1
        if outcome == OK and answered and entry.msg_id is not None:
            self.successes += 1
            if not self._succeeded.add(entry.msg_id):
                self.duplicate_successes += 1

    def entries(self, msg_id: int | None = None, since: float | None = None) -> list[Entry]:
        """The journaled requests, oldest first, optionally one msgId's or those from ``since``."""
        return [
            entry
            for entry in self._entries
            if (msg_id is None or entry.msg_id == msg_id)
            and (since is None or entry.received_at >= since)
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "unique_msg_ids": self._seen.count,
            "successes": self.successes,
            "duplicate_successes": self.duplicate_successes,
            "by_outcome": dict(self.by_outcome),
        }

    def _shared_text(self, text: str) -> str:
        shared = self._texts.get(text)
        if shared is not None:
            return shared
        if len(self._texts) < _MAX_SHARED_TEXTS:
            self._texts[text] = text
        return text

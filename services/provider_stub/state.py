"""The stub's mutable state: its behaviour, its scripts, its token and its journal."""

import random
from collections import deque
from dataclasses import dataclass, field

from services.provider_stub.journal import Journal
from services.provider_stub.outcomes import Behaviour


@dataclass
class StubState:
    token: str
    journal: Journal
    hang_max_s: float
    behaviour: Behaviour = field(default_factory=Behaviour)
    scripts: dict[int, deque[str]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def next_outcome(self, msg_id: int) -> str:
        """The next scripted outcome for this msgId, else one drawn from the behaviour."""
        script = self.scripts.get(msg_id)
        if script:
            outcome = script.popleft()
            if not script:
                del self.scripts[msg_id]
            return outcome
        return self.behaviour.draw(self.rng)

    def forget(self) -> None:
        """Forget the journal and the scripts; the behaviour and the token stay."""
        self.journal.clear()
        self.scripts.clear()

"""What the stub does with one request, and how that is chosen.

An outcome is named in the script vocabulary of SPEC §4.1: ``ok``, an HTTP status such as
``503``, ``not-json``, ``empty-object``, ``code-1``, ``hang`` or ``drop``, plus ``code-string-0``
(``{"code": "0"}``: a provider that quotes its success code, which the contract does not call a
success). The journal adds ``unauthorized`` and ``bad-request`` for requests refused before any
outcome applies.
"""

import random
import re
from dataclasses import dataclass

OK = "ok"
NOT_JSON = "not-json"
EMPTY_OBJECT = "empty-object"
CODE_1 = "code-1"
CODE_STRING_0 = "code-string-0"
HANG = "hang"
DROP = "drop"
UNAUTHORIZED = "unauthorized"
BAD_REQUEST = "bad-request"

NAMED = frozenset({OK, NOT_JSON, EMPTY_OBJECT, CODE_1, CODE_STRING_0, HANG, DROP})
MALFORMED = (NOT_JSON, EMPTY_OBJECT, CODE_1, CODE_STRING_0)
# Statuses a script or the error behaviour may answer with; 2xx and 3xx are not errors, and
# "ok" already is the one success.
_STATUS = re.compile(r"[45][0-9]{2}")


def is_outcome(item: str) -> bool:
    """True for a script item the stub knows how to play."""
    return item in NAMED or bool(_STATUS.fullmatch(item))


def status_of(outcome: str) -> int | None:
    """The HTTP status of an error outcome such as ``503``, else None."""
    return int(outcome) if _STATUS.fullmatch(outcome) else None


@dataclass
class Behaviour:
    """The global behaviour: how every request without a script is answered."""

    latency_ms: int = 0
    error_rate: float = 0.0
    error_status: int = 503
    hang_rate: float = 0.0
    malformed_rate: float = 0.0
    drop_rate: float = 0.0

    def draw(self, rng: random.Random) -> str:
        """One outcome, each fault with its own probability; ``ok`` with what is left."""
        roll = rng.random()
        for rate, outcome in (
            (self.drop_rate, DROP),
            (self.hang_rate, HANG),
            (self.error_rate, str(self.error_status)),
            (self.malformed_rate, ""),
        ):
            if roll < rate:
                return outcome or rng.choice(MALFORMED)
            roll -= rate
        return OK

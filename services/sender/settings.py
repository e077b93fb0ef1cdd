"""The sender's own settings (``MAILER_SENDER_*``); provider, database and broker are shared."""

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings

from shared import topology
from shared.settings import ENV_CONFIG


class SenderSettings(BaseSettings):
    """How much a sender takes on at once, how long it waits, and how it retries."""

    model_config = ENV_CONFIG

    sender_prefetch: int = Field(default=200, ge=1, le=1000)
    """Work messages in flight per sender; also the size of its HTTP connection pool, and
    what a crash of this sender may send twice (SPEC §5). A sender's rate is at most this
    over the provider's latency: 200 over 200 ms is 1,000 messages/s."""
    sender_request_timeout_s: float = Field(default=10.0, gt=0, le=120)
    """Longest a provider call may take; shorter when the mailing's end_at is nearer."""
    sender_max_attempts: int = Field(default=8, ge=1, le=100)
    """Provider calls per message before it is ``failed`` ("attempts exhausted")."""
    sender_retry_base_s: float = Field(default=1.0, gt=0)
    """Backoff before the second call; it doubles per attempt, with jitter."""
    sender_retry_max_s: float = Field(default=float(max(topology.RETRY_DELAYS_S)), gt=0)
    """Longest backoff, and the cap on a provider's ``Retry-After``."""
    sender_auth_backoff_min_s: float = Field(default=5.0, gt=0)
    """After a 401/403, the pause before one call probes whether the token works again."""
    sender_auth_backoff_max_s: float = Field(default=60.0, gt=0)
    """The pause between probes doubles up to this while the provider still refuses."""
    sender_auth_hold_max_s: float = Field(default=60.0, gt=0, le=600)
    """Longest a message is held while the provider refuses the token; then it goes to a
    retry queue. Far below RabbitMQ's 30-minute consumer timeout on purpose."""
    sender_lookup_window_ms: float = Field(default=10.0, ge=0, le=1000)
    """Lookups of concurrent messages within this window share one database query."""
    sender_lookup_timeout_s: float = Field(default=5.0, gt=0)
    """A database lookup slower than this counts as the database being unavailable."""
    sender_stop_timeout_s: float = Field(default=15.0, gt=0)
    """On SIGTERM, how long in-flight messages may take to finish before the sender exits."""

    @field_validator("sender_auth_backoff_max_s")
    @classmethod
    def _not_below_min(cls, value: float, info: ValidationInfo) -> float:
        if value < info.data.get("sender_auth_backoff_min_s", 0):
            raise ValueError("must not be below MAILER_SENDER_AUTH_BACKOFF_MIN_S")
        return value

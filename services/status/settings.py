"""The status service's settings (``MAILER_STATUS_*``)."""

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings

from shared.settings import ENV_CONFIG


class StatusSettings(BaseSettings):
    """How many results the status service holds, and when it writes them."""

    model_config = ENV_CONFIG

    status_prefetch: int = Field(default=2_000, ge=1, le=65_535)
    """Unacked deliveries RabbitMQ hands over per queue: bounds what is held between writes.

    A sender's delivery holds up to 100 results (its batch); an older sender's, one."""
    status_batch_size: int = Field(default=500, ge=1)
    """A batch is written as soon as it holds this many results (at most the prefetch)."""
    status_flush_interval_ms: int = Field(default=50, ge=1)
    """A batch that is not full is written this long after its first delivery arrived."""
    status_db_retry_max_s: float = Field(default=5.0, gt=0)
    """While the database is unreachable, a batch is retried with backoff up to this pause."""

    @field_validator("status_batch_size")
    @classmethod
    def _fits_prefetch(cls, size: int, info: ValidationInfo) -> int:
        # With fewer deliveries in flight than a batch holds, no batch would ever fill and every
        # write would wait for the interval.
        prefetch = info.data.get("status_prefetch")
        if prefetch is not None and size > prefetch:
            raise ValueError(f"must not exceed MAILER_STATUS_PREFETCH ({size} > {prefetch})")
        return size

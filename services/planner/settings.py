"""The planner's settings (``MAILER_PLANNER_*``)."""

from pydantic import Field
from pydantic_settings import BaseSettings

from shared.settings import ENV_CONFIG


class PlannerSettings(BaseSettings):
    """How often the planner ticks and how much work one tick takes on."""

    model_config = ENV_CONFIG

    planner_tick_interval_s: float = Field(default=1.0, gt=0)
    """Seconds between ticks; a mailing starts at most about this long after its ``start_at``."""
    planner_audience_chunk_size: int = Field(default=10_000, ge=1)
    """Clients scanned by one materialisation statement (one transaction) of a mailing."""
    planner_dispatch_batch_size: int = Field(default=2_000, ge=1)
    """Pending messages claimed, published and marked ``queued`` in one transaction."""
    planner_work_queue_max: int = Field(default=20_000, ge=0)
    """Messages waiting in the work queue past which the planner dispatches no more; 0 for
    no bound.

    The rest waits ``pending`` in the database, where it costs the broker no memory, a
    cancel or a deadline takes it at no cost, and another mailing's first batch is not queued
    behind it. Room for 20 s of work at 1,000 messages/s keeps the senders fed.
    """
    planner_batches_per_tick: int = Field(default=10, ge=1)
    """Most audience chunks one audience tick runs, and most dispatch batches one delivery
    tick runs.

    Keeps a tick short, so that shutdown and other mailings do not wait behind a big one (each
    takes its turn within a tick); when work is left over, the next tick starts at once.
    """
    planner_zones_per_tick: int = Field(default=500, ge=1)
    """Most (mailing, time zone) pairs of windowed mailings one tick visits; each visit
    dispatches at most one batch. More than that left due makes the next tick start at once."""
    planner_queued_grace_s: float = Field(default=15.0, ge=0)
    """How long after ``end_at`` the planner expires a message still ``queued``.

    A sender normally reports those itself; the grace lets its result land first.
    """

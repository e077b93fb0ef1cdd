"""SQLAlchemy models of SPEC §2: Client, Mailing, Message, and the per-mailing counters.

The database enforces the rules too (unique phone, one message per mailing and client, formats
and statuses as CHECK constraints), so a bug or a second writer cannot store what the API
would refuse. The migrations in ``shared/migrations`` create exactly this schema; a test
compares the two.
"""

from datetime import datetime, time

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.statuses import MailingStatus, MessageStatus

MAX_ID = 2**63 - 1
"""The largest id a bigint column holds; larger ones cannot exist."""

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: type[MailingStatus] | type[MessageStatus]) -> str:
    listed = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({listed})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class _Timestamps:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Client(_Timestamps, Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    phone: Mapped[str] = mapped_column(String(11), unique=True)
    operator_code: Mapped[str] = mapped_column(String(3), index=True)
    tag: Mapped[str] = mapped_column(String(64), server_default="", index=True)
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")

    __table_args__ = (
        CheckConstraint("phone ~ '^7[0-9]{10}$'", name="phone_format"),
        CheckConstraint("operator_code ~ '^[0-9]{3}$'", name="operator_code_format"),
        CheckConstraint("timezone <> ''", name="timezone_not_empty"),
    )


class Mailing(_Timestamps, Base):
    __tablename__ = "mailings"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    start_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    text: Mapped[str] = mapped_column(Text)
    operator_codes: Mapped[list[str]] = mapped_column(
        ARRAY(String(3)), server_default=sql_text("'{}'")
    )
    """Filter: the client's operator code must be one of these; empty means any."""
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default=sql_text("'{}'"))
    """Filter: the client's tag must be one of these; empty means any."""
    window_start: Mapped[time | None] = mapped_column(Time)
    window_end: Mapped[time | None] = mapped_column(Time)
    status: Mapped[str] = mapped_column(String(16), server_default=MailingStatus.SCHEDULED.value)
    audience_until_client_id: Mapped[int | None] = mapped_column(BigInteger)
    """The highest client id when the mailing started: clients created later are not in it."""
    audience_done_client_id: Mapped[int | None] = mapped_column(BigInteger)
    """How far the planner has materialised the audience (client id), to resume after a crash."""
    materialized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When every message of the audience existed; until then the mailing cannot finish."""

    __table_args__ = (
        CheckConstraint("end_at > start_at", name="end_after_start"),
        CheckConstraint(
            "char_length(text) BETWEEN 1 AND 2000 AND btrim(text, E' \\t\\n\\r\\f\\x0b') <> ''",
            name="text_length",
        ),
        CheckConstraint(
            "(window_start IS NULL) = (window_end IS NULL) AND window_start <> window_end",
            name="window_valid",
        ),
        CheckConstraint(_in("status", MailingStatus), name="status_known"),
        # Dispatch and listing by status read this; keyset pagination follows id.
        Index(None, "status", "id"),
        Index(
            "ix_mailings_scheduled_start_at",
            "start_at",
            postgresql_where=sql_text("status = 'scheduled'"),
        ),
    )


class Message(_Timestamps, Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    """The provider's ``msgId``: one per message, the same for every attempt."""
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    # A deleted client's past records stay (SPEC §3), so the link is cleared, not cascaded.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), server_default=MessageStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    timezone: Mapped[str | None] = mapped_column(String(64))
    """The client's zone, for messages of a mailing with a send window (NULL otherwise): the
    planner dispatches such messages zone by zone, as their windows open."""
    dispatches: Mapped[int] = mapped_column(Integer, server_default="0")
    """How many times the planner has queued this message. A sender that puts it back to
    ``pending`` (its window closed) names the dispatch, so a late copy of that report cannot
    undo a later dispatch."""
    dispatch_xid: Mapped[int | None] = mapped_column(BigInteger)
    """The planner transaction that queued the message, written in that transaction; its work
    message carries the same number. A copy published by a transaction that then rolled back
    (the database restarted before the commit) never matches, so a sender skips it and only
    the copy of the dispatch that counted is sent."""

    __table_args__ = (
        CheckConstraint(_in("status", MessageStatus), name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint("dispatches >= 0", name="dispatches_not_negative"),
        Index(None, "mailing_id", "client_id", unique=True),
        Index(None, "mailing_id", "status", "id"),
        Index(None, "mailing_id", "id"),
        Index(None, "client_id"),
        Index(
            "ix_messages_pending_zone",
            "mailing_id",
            "timezone",
            "id",
            postgresql_where=sql_text("status = 'pending' AND timezone IS NOT NULL"),
        ),
    )


class MailingZone(Base):
    """One time zone of a windowed mailing's audience: when the planner looks at it next.

    Clients of one zone share every opening and closing of the window, so the planner works
    per zone: a closed zone sleeps until its next opening instead of its messages being
    scanned on every tick.
    """

    __tablename__ = "mailing_zones"

    mailing_id: Mapped[int] = mapped_column(
        ForeignKey("mailings.id", ondelete="CASCADE"), primary_key=True
    )
    timezone: Mapped[str] = mapped_column(String(64), primary_key=True)
    wake_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the planner next looks at this zone: now while messages may be waiting in an open
    window, else the next closing or opening; NULL once the window cannot open again before
    the mailing's end (its messages have expired)."""
    version: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """Bumped by every wake-up (:mod:`shared.zone_wakes`). A planner writes the sleep it
    decided on only for the version it read, so a wake-up during its visit is never lost."""

    __table_args__ = (
        Index(
            "ix_mailing_zones_wake_at", "wake_at", postgresql_where=sql_text("wake_at IS NOT NULL")
        ),
    )


class MailingCounts(Base):
    """Messages per status of one mailing, kept by triggers on ``messages``.

    Statistics read one row per mailing instead of counting millions of messages. The
    triggers are statement-level with transition tables, so a batch of status writes updates
    each mailing's row once, not once per message.
    """

    __tablename__ = "mailing_counts"

    mailing_id: Mapped[int] = mapped_column(
        ForeignKey("mailings.id", ondelete="CASCADE"), primary_key=True
    )
    pending: Mapped[int] = mapped_column(BigInteger, server_default="0")
    queued: Mapped[int] = mapped_column(BigInteger, server_default="0")
    sent: Mapped[int] = mapped_column(BigInteger, server_default="0")
    failed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    expired: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cancelled: Mapped[int] = mapped_column(BigInteger, server_default="0")

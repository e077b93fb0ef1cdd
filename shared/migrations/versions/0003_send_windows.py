"""Send windows: each windowed message knows its client's zone, and each zone when to look again.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("timezone", sa.String(64)))
    op.add_column(
        "messages", sa.Column("dispatches", sa.Integer, nullable=False, server_default="0")
    )
    op.create_check_constraint("dispatches_not_negative", "messages", "dispatches >= 0")
    # The planner's claim of one zone's pending messages of a windowed mailing.
    op.create_index(
        "ix_messages_pending_zone",
        "messages",
        ["mailing_id", "timezone", "id"],
        postgresql_where=sa.text("status = 'pending' AND timezone IS NOT NULL"),
    )
    op.create_table(
        "mailing_zones",
        sa.Column(
            "mailing_id",
            sa.BigInteger,
            sa.ForeignKey("mailings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("wake_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("mailing_id", "timezone", name="pk_mailing_zones"),
    )
    op.create_index(
        "ix_mailing_zones_wake_at",
        "mailing_zones",
        ["wake_at"],
        postgresql_where=sa.text("wake_at IS NOT NULL"),
    )
    _backfill()


def _backfill() -> None:
    """Mailings with a window accepted before this revision: plan their unsent messages too.

    Their messages learn their client's zone and every such zone is due at once; a queued
    message counts as dispatched once, as its work message (``dispatch`` 1 by default) says.
    Status is not changed, so the counter triggers move nothing.
    """
    op.execute(
        "UPDATE messages AS msg SET timezone = c.timezone"
        " FROM mailings AS m, clients AS c"
        " WHERE m.id = msg.mailing_id AND c.id = msg.client_id AND m.window_start IS NOT NULL"
        " AND msg.status IN ('pending', 'queued')"
    )
    op.execute("UPDATE messages SET dispatches = 1 WHERE status = 'queued'")
    op.execute(
        "INSERT INTO mailing_zones (mailing_id, timezone, wake_at)"
        " SELECT DISTINCT mailing_id, timezone, now() FROM messages"
        " WHERE timezone IS NOT NULL AND status IN ('pending', 'queued')"
    )


def downgrade() -> None:
    op.drop_index("ix_mailing_zones_wake_at", "mailing_zones")
    op.drop_table("mailing_zones")
    op.drop_index("ix_messages_pending_zone", "messages")
    op.drop_constraint("dispatches_not_negative", "messages", type_="check")
    op.drop_column("messages", "dispatches")
    op.drop_column("messages", "timezone")

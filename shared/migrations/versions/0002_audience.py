"""What the planner needs to fix a mailing's audience once and pick up where it left off.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("mailings", sa.Column("audience_until_client_id", sa.BigInteger))
    op.add_column("mailings", sa.Column("materialized_at", sa.DateTime(timezone=True)))
    op.add_column("mailings", sa.Column("audience_done_client_id", sa.BigInteger))
    # The planner's "what starts now" and "what is running" look-ups.
    op.create_index(
        "ix_mailings_scheduled_start_at",
        "mailings",
        ["start_at"],
        postgresql_where=sa.text("status = 'scheduled'"),
    )


def downgrade() -> None:
    op.drop_index("ix_mailings_scheduled_start_at", "mailings")
    op.drop_column("mailings", "audience_done_client_id")
    op.drop_column("mailings", "materialized_at")
    op.drop_column("mailings", "audience_until_client_id")

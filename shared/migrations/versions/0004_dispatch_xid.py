"""Each queued message names the planner transaction that queued it.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for messages queued before this revision: their work messages carry no xid, and
    # senders check those the old way.
    op.add_column("messages", sa.Column("dispatch_xid", sa.BigInteger))


def downgrade() -> None:
    op.drop_column("messages", "dispatch_xid")

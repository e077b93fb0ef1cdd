"""Clients, mailings, messages and the per-mailing counters.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE_STATUSES = ("pending", "queued", "sent", "failed", "expired", "cancelled")
MAILING_STATUSES = ("scheduled", "running", "finished", "cancelled")


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def _status_check(values: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    _create_clients()
    _create_mailings()
    _create_messages()
    _create_counts()


def _create_clients() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("phone", sa.String(11), nullable=False),
        sa.Column("operator_code", sa.String(3), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False, server_default=""),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        *_timestamps(),
        sa.CheckConstraint("phone ~ '^7[0-9]{10}$'", name="phone_format"),
        sa.CheckConstraint("operator_code ~ '^[0-9]{3}$'", name="operator_code_format"),
        sa.CheckConstraint("timezone <> ''", name="timezone_not_empty"),
        sa.UniqueConstraint("phone"),
    )
    op.create_index(None, "clients", ["operator_code"])
    op.create_index(None, "clients", ["tag"])


def _create_mailings() -> None:
    op.create_table(
        "mailings",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column(
            "operator_codes",
            postgresql.ARRAY(sa.String(3)),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
        sa.Column(
            "tags", postgresql.ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("window_start", sa.Time, nullable=True),
        sa.Column("window_end", sa.Time, nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="scheduled"),
        *_timestamps(),
        sa.CheckConstraint("end_at > start_at", name="end_after_start"),
        sa.CheckConstraint(
            "char_length(text) BETWEEN 1 AND 2000 AND btrim(text, E' \\t\\n\\r\\f\\x0b') <> ''",
            name="text_length",
        ),
        sa.CheckConstraint(
            "(window_start IS NULL) = (window_end IS NULL) AND window_start <> window_end",
            name="window_valid",
        ),
        sa.CheckConstraint(_status_check(MAILING_STATUSES), name="status_known"),
    )
    op.create_index(None, "mailings", ["status", "id"])


def _create_messages() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "mailing_id",
            sa.BigInteger,
            sa.ForeignKey("mailings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("client_id", sa.BigInteger, sa.ForeignKey("clients.id", ondelete="SET NULL")),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.CheckConstraint(_status_check(MESSAGE_STATUSES), name="status_known"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )
    op.create_index(None, "messages", ["mailing_id", "client_id"], unique=True)
    op.create_index(None, "messages", ["mailing_id", "status", "id"])
    op.create_index(None, "messages", ["mailing_id", "id"])
    op.create_index(None, "messages", ["client_id"])


def _count_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column(status, sa.BigInteger, nullable=False, server_default="0")
        for status in MESSAGE_STATUSES
    ]


def _create_counts() -> None:
    op.create_table(
        "mailing_counts",
        sa.Column(
            "mailing_id",
            sa.BigInteger,
            sa.ForeignKey("mailings.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        *_count_columns(),
    )
    op.execute(_COUNTS_ROW_FUNCTION)
    op.execute(
        "CREATE TRIGGER mailing_counts_create AFTER INSERT ON mailings"
        " FOR EACH ROW EXECUTE FUNCTION mailing_counts_create()"
    )
    for name, transition, rows in _COUNT_TRIGGERS:
        op.execute(_counts_function(name, rows))
        op.execute(
            f"CREATE TRIGGER messages_count_{name} AFTER {name.upper()} ON messages"
            f" {transition} FOR EACH STATEMENT EXECUTE FUNCTION messages_count_{name}()"
        )
    # TRUNCATE fires no DELETE trigger; without this the counters would outlive the rows.
    op.execute(_ZERO_COUNTS_FUNCTION)
    op.execute(
        "CREATE TRIGGER messages_count_truncate AFTER TRUNCATE ON messages"
        " FOR EACH STATEMENT EXECUTE FUNCTION messages_count_truncate()"
    )


# A row moves a counter when its status or its mailing changed. An update that only counts an
# attempt or notes an error moves none, and writing the counter row anyway would serialise
# those batches on it.
_CHANGED = "n.status <> o.status OR n.mailing_id <> o.mailing_id"

# (operation, transition tables, the rows as (mailing_id, status, +1 or -1))
_COUNT_TRIGGERS = (
    ("insert", "REFERENCING NEW TABLE AS new_rows", "SELECT mailing_id, status, 1 FROM new_rows"),
    (
        "update",
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        f"SELECT n.mailing_id, n.status, 1 FROM new_rows n JOIN old_rows o USING (id)"
        f" WHERE {_CHANGED}"
        f" UNION ALL SELECT o.mailing_id, o.status, -1 FROM old_rows o JOIN new_rows n"
        f" USING (id) WHERE {_CHANGED}",
    ),
    ("delete", "REFERENCING OLD TABLE AS old_rows", "SELECT mailing_id, status, -1 FROM old_rows"),
)

_ZERO_COUNTS_FUNCTION = f"""
CREATE FUNCTION messages_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mailing_counts SET {", ".join(f"{s} = 0" for s in MESSAGE_STATUSES)};
    RETURN NULL;
END $$
"""

_COUNTS_ROW_FUNCTION = """
CREATE FUNCTION mailing_counts_create() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mailing_counts (mailing_id) VALUES (NEW.id);
    RETURN NULL;
END $$
"""


def _counts_function(name: str, signed_rows: str) -> str:
    sums = ",\n".join(f"sum(d) FILTER (WHERE status = '{s}') AS {s}" for s in MESSAGE_STATUSES)
    assignments = ", ".join(f"{s} = c.{s} + coalesce(d.{s}, 0)" for s in MESSAGE_STATUSES)
    # Counter rows are locked in mailing order first: two batches touching the same mailings
    # in different orders would otherwise deadlock. Built from constants only, not from input.
    return f"""
CREATE FUNCTION messages_count_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM mailing_counts
        WHERE mailing_id IN (SELECT t.mailing_id FROM ({signed_rows}) AS t(mailing_id, status, d))
        ORDER BY mailing_id FOR UPDATE;
    UPDATE mailing_counts AS c SET {assignments}
    FROM (
        SELECT mailing_id, {sums}
        FROM ({signed_rows}) AS t(mailing_id, status, d)
        GROUP BY mailing_id
    ) AS d
    WHERE c.mailing_id = d.mailing_id;
    RETURN NULL;
END $$
"""


def downgrade() -> None:
    op.drop_table("mailing_counts")
    op.execute("DROP TRIGGER IF EXISTS mailing_counts_create ON mailings")
    op.drop_table("messages")
    op.drop_table("mailings")
    op.drop_table("clients")
    for name in (
        "mailing_counts_create",
        *(f"messages_count_{n}" for n in ("insert", "update", "delete", "truncate")),
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")

"""The demo's SQL: clients arrive by COPY into a staging table, then join ``clients``."""

STAGE_TABLE = "demo_clients_stage"
STAGE_COLUMNS = ("phone", "operator_code", "tag", "timezone")

# COPY cannot skip conflicting rows, so it fills a temporary table that one INSERT moves
# over: a phone some earlier client already has is skipped instead of failing the load.
CREATE_STAGE = f"""
CREATE TEMPORARY TABLE {STAGE_TABLE} (
    phone text NOT NULL, operator_code text NOT NULL, tag text NOT NULL, timezone text NOT NULL
) ON COMMIT DROP
"""

INSERT_FROM_STAGE = f"""
INSERT INTO clients (phone, operator_code, tag, timezone)
SELECT phone, operator_code, tag, timezone FROM {STAGE_TABLE}
ON CONFLICT (phone) DO NOTHING
"""  # noqa: S608 - the table name is the constant above, not input

"""Dashboard: obligations.first_escalation_at, and indexes for counting open and closed work.

`first_escalation_at` is the earliest of `escalate_at`, so "escalated at T" (overdue and
past a threshold) is a comparison the dashboard's index can answer; existing rows are
filled from their JSON thresholds. On PostgreSQL both indexes carry INCLUDE columns so the
dashboard's counts are index-only scans; SQLite ignores INCLUDE.

Revision ID: 0003_dashboard
Revises: 0002_alerts
Create Date: 2026-11-23 12:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003_dashboard"
down_revision: str | Sequence[str] | None = "0002_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("closed_at IS NULL")
# Written out rather than imported from the models: a migration must not change later.
_OPEN_INCLUDE = [
    "id",
    "due_at",
    "warn_at",
    "opened_at",
    "first_escalation_at",
    "rule_id",
    "rule_name",
]
_CLOSED_INCLUDE = ["met_at", "due_at", "opened_at", "rule_id", "worker_id", "team_id"]
_BACKFILL = {
    "postgresql": """
        UPDATE obligations SET first_escalation_at = (
            SELECT min(CAST(threshold AS TIMESTAMP WITH TIME ZONE))
            FROM json_array_elements_text(escalate_at) AS threshold
        )
        WHERE json_array_length(escalate_at) > 0
    """,
    # SQLite keeps datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' UTC text: rewrite each ISO
    # threshold into that form (strftime applies its offset) and take the least.
    "sqlite": """
        UPDATE obligations SET first_escalation_at = (
            SELECT min(
                strftime('%Y-%m-%d %H:%M:%S', value)
                || CASE WHEN substr(value, 20, 1) = '.' THEN substr(value, 20, 7)
                   ELSE '.000000' END
            )
            FROM json_each(obligations.escalate_at)
        )
        WHERE json_array_length(escalate_at) > 0
    """,
}


def upgrade() -> None:
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_escalation_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.execute(sa.text(_BACKFILL[op.get_bind().dialect.name]))
    op.create_index(
        "ix_obligations_open_org_id_worker_id_team_id_case_id",
        "obligations",
        ["org_id", "worker_id", "team_id", "case_id"],
        unique=False,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
        postgresql_include=_OPEN_INCLUDE,
    )
    op.create_index(
        "ix_obligations_org_id_closed_at",
        "obligations",
        ["org_id", "closed_at"],
        unique=False,
        postgresql_include=_CLOSED_INCLUDE,
    )


def downgrade() -> None:
    op.drop_index("ix_obligations_org_id_closed_at", table_name="obligations")
    op.drop_index("ix_obligations_open_org_id_worker_id_team_id_case_id", table_name="obligations")
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_column("first_escalation_at")

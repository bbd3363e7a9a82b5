"""The tables the write path fills keep their organisation without a foreign key.

Every write reads its ruleset under a share lock on its organisation's row, which holds the
row for the transaction, and no organisation is ever deleted; the foreign key made
PostgreSQL look that row up again for every row written (service/store/tables.py,
`_org_key`). The rows stay as they are.

Revision ID: 0017_org_keys_without_checks
Revises: 0016_deadline_clocks
Create Date: 2026-12-08 18:00:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0017_org_keys_without_checks"
down_revision: str | Sequence[str] | None = "0016_deadline_clocks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "cases",
    "events",
    "obligations",
    "risk_periods",
    "case_periods",
    "daily_completions",
    "alerts",
)


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_org_id_orgs", type_="foreignkey")


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(f"fk_{table}_org_id_orgs", "orgs", ["org_id"], ["id"])

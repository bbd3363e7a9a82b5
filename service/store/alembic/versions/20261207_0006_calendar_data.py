"""Each organisation records the bank-holiday data its obligations were derived with, so that
a new version of that data re-derives them (`caseclock migrate`) and replicas never disagree.

Revision ID: 0006_calendar_data
Revises: 0005_daily_completions
Create Date: 2026-12-07 04:15:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006_calendar_data"
down_revision: str | Sequence[str] | None = "0005_daily_completions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null: derived with data not recorded, so the next `caseclock migrate` re-derives.
    with op.batch_alter_table("orgs") as batch:
        batch.add_column(sa.Column("calendar_data", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orgs") as batch:
        batch.drop_column("calendar_data")

"""Alerts raised by event writes wait a settle period before their first delivery attempt.

Revision ID: 0007_alert_settle
Revises: 0006_calendar_data
Create Date: 2026-12-07 04:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007_alert_settle"
down_revision: str | Sequence[str] | None = "0006_calendar_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("settles", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("settles")

"""Obligations say when `met_at` is only the latest they can have been met (a snapshot's
latest date, as an Annex A extract gives it).

Rows stored before take the flag when their case is next re-derived; until then they read
as exact, as they did before this revision.

Revision ID: 0013_met_at_latest
Revises: 0011_partial_lookup_indexes
Create Date: 2026-12-07 07:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013_met_at_latest"
down_revision: str | Sequence[str] | None = "0011_partial_lookup_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("obligations") as batch:
        batch.add_column(
            sa.Column("met_at_latest", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("obligations") as batch:
        batch.drop_column("met_at_latest")

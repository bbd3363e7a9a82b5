"""Why deadlines are late: obligations keep the reason recorded for them, the rule's due date
beside an agreed one, and what was said of their clock (reason, extension, pauses); the
daily completions rollup counts the late ones that have a reason.

No stored obligation has any of these yet (the events that give them are new), so the new
columns start empty and the rollup's new count at 0, exact as they are.

Revision ID: 0016_deadline_clocks
Revises: 0015_sources
Create Date: 2026-12-08 12:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.store.types import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = "0016_deadline_clocks"
down_revision: str | Sequence[str] | None = "0015_sources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("obligations") as batch:
        batch.add_column(sa.Column("original_due_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("delay_reason", sa.String(64), nullable=True))
        batch.add_column(sa.Column("clock", sa.JSON(), nullable=True))
    with op.batch_alter_table("daily_completions") as batch:
        batch.add_column(
            sa.Column("late_with_reason", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("daily_completions") as batch:
        batch.drop_column("late_with_reason")
    with op.batch_alter_table("obligations") as batch:
        batch.drop_column("clock")
        batch.drop_column("delay_reason")
        batch.drop_column("original_due_at")

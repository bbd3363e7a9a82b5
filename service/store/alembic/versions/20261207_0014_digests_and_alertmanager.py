"""Subscriptions filter by escalation level and worker, take a digest schedule, and may push
to an Alertmanager; alerts record the worker they concern; digests are keyed by period.

Revision ID: 0014_digests_and_alertmanager
Revises: 0013_met_at_latest
Create Date: 2026-12-07 09:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.store.types import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = "0014_digests_and_alertmanager"
down_revision: str | Sequence[str] | None = "0013_met_at_latest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("escalation_levels", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("worker_ids", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column(
                "kind", sa.String(length=20), nullable=False, server_default=sa.text("'webhook'")
            )
        )
        batch.add_column(sa.Column("digest_schedule", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("digest_starts_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("worker_id", sa.String(length=200), nullable=True))
    op.create_table(
        "digests",
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("team_id", sa.String(length=200), nullable=False),
        sa.Column("period", sa.String(length=20), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_digests_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_digests_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscription_id", "team_id", "period", name=op.f("pk_digests")),
    )


def downgrade() -> None:
    op.drop_table("digests")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("worker_id")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("digest_starts_at")
        batch.drop_column("digest_schedule")
        batch.drop_column("kind")
        batch.drop_column("worker_ids")
        batch.drop_column("escalation_levels")

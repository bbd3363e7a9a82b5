"""Sources an organisation syncs from (the Standard Safeguarding Dataset), and the reports of
their syncs.

Revision ID: 0015_sources
Revises: 0014_digests_and_alertmanager
Create Date: 2026-12-08 09:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.store.types import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = "0015_sources"
down_revision: str | Sequence[str] | None = "0014_digests_and_alertmanager"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("database_url", sa.Text(), nullable=True),
        sa.Column("schema_name", sa.String(length=128), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("schedule", sa.String(length=20), nullable=True),
        sa.Column("scheduled_for", sa.Date(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_sources_org_id_orgs")),
        sa.PrimaryKeyConstraint("org_id", "kind", name=op.f("pk_sources")),
    )
    op.create_table(
        "source_syncs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_source_syncs_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_syncs")),
    )
    op.create_index(
        "ix_source_syncs_org_id_created_at_id",
        "source_syncs",
        ["org_id", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_source_syncs_org_id_created_at_id", table_name="source_syncs")
    op.drop_table("source_syncs")
    op.drop_table("sources")
